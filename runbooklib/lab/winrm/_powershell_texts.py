"""What Windows PowerShell 5.1 itself says when a command, snap-in or module is missing.

Every engine text the lab's built-in commands and dispatcher use lives here, tagged:

* ``[C]`` confirmed from captured Windows PowerShell output (error text, CategoryInfo and
  FullyQualifiedErrorId seen together in public bug reports and scripts) or Microsoft's docs;
* ``[U]`` unconfirmed: our best reading, kept here so one edit corrects it.

Windows PowerShell 5.1 says "Windows PowerShell snap-in"; PowerShell 7 dropped "Windows" from
these texts. Remote sessions to SharePoint servers run Windows PowerShell 5.1.
"""

from __future__ import annotations


# CORE_SNAPIN, the snap-in every session starts with, holds Add-PSSnapin, Get-PSSnapin,
# Import-Module, Get-Module and Get-Command; by default it is the only snap-in added.         [C]
CORE_SNAPIN_DESCRIPTION = "This Windows PowerShell snap-in contains cmdlets used to manage components of Windows PowerShell."  # [U]

T_CMDLET_INFO = ["System.Management.Automation.CmdletInfo", "System.Management.Automation.CommandInfo",
                 "System.Object"]                                                          # [C]
T_SNAPIN_INFO = ["System.Management.Automation.PSSnapInInfo", "System.Object"]             # [C]
T_MODULE_INFO = ["System.Management.Automation.PSModuleInfo", "System.Object"]             # [C]


# --- an unknown command -----------------------------------------------------------------------
# CategoryInfo "ObjectNotFound: (<name>:String) [], CommandNotFoundException",
# FullyQualifiedErrorId "CommandNotFoundException" (no command suffix: no command ran).   [C]
def command_not_found(name: str) -> str:
    return (f"The term '{name}' is not recognized as the name of a cmdlet, function, script file, or operable "
            "program. Check the spelling of the name, or if a path was included, verify that the path is correct "
            "and try again.")


COMMAND_NOT_FOUND_ID = "CommandNotFoundException"
COMMAND_NOT_FOUND_EXCEPTION = "System.Management.Automation.CommandNotFoundException"
# Get-Command -Name <unknown>: the same text, non-terminating, category ObjectNotFound.     [C]
GET_COMMAND_NOT_FOUND_ID = "CommandNotFoundException,Microsoft.PowerShell.Commands.GetCommandCommand"

# --- Add-PSSnapin -----------------------------------------------------------------------------
# Both failures are non-terminating error records with the same id, category InvalidArgument,
# exception PSArgumentException, target the name as given.                                  [C]
ADD_SNAPIN_ERROR_ID = "AddPSSnapInRead,Microsoft.PowerShell.Commands.AddPSSnapinCommand"
PS_ARGUMENT_EXCEPTION = "System.Management.Automation.PSArgumentException"


def snapin_not_installed(name: str) -> str:
    return f"The Windows PowerShell snap-in '{name}' is not installed on this computer."  # [C]


def snapin_already_added(name: str) -> str:
    # [C] text as captured ("…snap-in and try again."; no quotes around the name); [U] that it
    # stays non-terminating (it shares the id of the not-installed record, which is).
    return (f"Cannot add Windows PowerShell snap-in {name} because it is already added. Verify the name of the "
            "snap-in and try again.")


# A wildcard name (Add-PSSnapin Vendor.*) that matches no registered snap-in adds nothing and
# says nothing.                                                                             [U]
ADD_SNAPIN_WILDCARD_MISS_IS_SILENT = True

# --- Get-PSSnapin -----------------------------------------------------------------------------
# Non-terminating; category InvalidArgument, PSArgumentException, target the pattern.       [C]
GET_SNAPIN_ERROR_ID = "NoPSSnapInsFound,Microsoft.PowerShell.Commands.GetPSSnapinCommand"


def no_snapins_matching(pattern: str) -> str:
    return (f"No Windows PowerShell snap-ins matching the pattern '{pattern}' were found. Check the pattern and then "
            "try the command again.")  # [C]


# Like Get-Command, a wildcard pattern that matches nothing is not an error.                [U]
GET_SNAPIN_WILDCARD_MISS_IS_SILENT = True

# --- Import-Module ----------------------------------------------------------------------------
# Non-terminating; category ResourceUnavailable, exception FileNotFoundException.            [C]
IMPORT_MODULE_ERROR_ID = "Modules_ModuleNotFound,Microsoft.PowerShell.Commands.ImportModuleCommand"
FILE_NOT_FOUND_EXCEPTION = "System.IO.FileNotFoundException"


def module_not_found(name: str) -> str:
    return (f"The specified module '{name}' was not loaded because no valid module file was found in any module "
            "directory.")  # [C]


# Importing a module that is already imported is silent and changes nothing.                [C]
# (A module's commands are found only after Import-Module here: the lab does not model
# module autoloading; see lab/sharepoint/texts.py SE_MODULE_AUTOLOADS.)                            [U]
MODULE_TYPE = "Manifest"  # [U] what Get-Module reports for a product's module


# --- a runspace without the script language ------------------------------------------------
# What a NoLanguage runspace (a commands-only session configuration, e.g. Exchange's
# Microsoft.Exchange) answers any script text with: a parse error, category ParserError,
# exception ParseException, id ScriptsNotAllowed, target the script text.                  [C]
# (Microsoft's about_Session_Configurations and about_Language_Modes show the text and record.)
# [U] Windows PowerShell 5.1's wording: the docs print "This might be because it is in
# no-language mode."; some captures read "This can occur if the runspace is in no-language
# mode." The docs' wording is used.
SCRIPTS_NOT_ALLOWED = ("The syntax is not supported by this runspace. This might be because it is in "
                       "no-language mode.")
SCRIPTS_NOT_ALLOWED_ID = "ScriptsNotAllowed"
SCRIPTS_NOT_ALLOWED_CATEGORY = "ParserError"
PARSE_EXCEPTION = "System.Management.Automation.ParseException"
# [U] Whether a script that is a single command line with literal arguments is run in a
# NoLanguage runspace: the lab refuses every script, as the runbooks never depend on it.
