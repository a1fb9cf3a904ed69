"""The inventory (servers and tenants) and scenario parameter files: YAML → typed models.

Everything is checked before anything is contacted. A bad value raises :class:`InputError`
naming the file, the dotted key path (``servers.sp-a.winrm``), the value (a secret
*reference* may be shown, a secret never is) and what was expected.

Relative paths — ``file:`` secret references, CA bundles, certificate files — are taken from
the inventory's folder and stored absolute, so later code never depends on the working
directory.
"""

from __future__ import annotations

import copy
import difflib
import logging
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from .errors import InputError
from .secrets import parse_secret_ref
from .wellknown import POWERSHELL_CONFIGURATION

__all__ = [
    "AuthMethod",
    "CredentialSpec",
    "CredentialType",
    "DomainName",
    "Guid",
    "InsecureTransportWarning",
    "Inventory",
    "Role",
    "SecretReference",
    "ServerSpec",
    "TenantSpec",
    "apply_overrides",
    "input_error_from_validation",
    "load_inventory",
    "load_parameters",
    "read_yaml",
]

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

Role = Literal["sharepoint", "oos", "skype", "exchange"]
AuthMethod = Literal["basic", "ntlm", "kerberos", "credssp", "certificate"]
CredentialType = Literal["client_secret", "certificate", "device_code", "azure_cli"]

#: Keys whose values are never echoed in an error, even when they are malformed references
#: (a malformed reference is often a password pasted in the wrong place).
SECRET_KEYS = frozenset({"password", "secret", "certificate_password", "client_secret", "token"})

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class InsecureTransportWarning(UserWarning):
    """An endpoint uses http:// because the inventory explicitly allows it."""


# --------------------------------------------------------------------------------------------
# Reusable field types (scenario parameter models use them too)


def _check_guid(value: str) -> str:
    if not _GUID.match(value.strip()):
        raise ValueError("expected a GUID like 6c3f2b1a-0d4e-4f5a-9b8c-7d6e5f4a3b2c")
    return value.strip().lower()


def _check_domain(value: str) -> str:
    name = value.strip().rstrip(".").lower()
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise ValueError("expected a DNS domain name like contoso.com (letters, digits, hyphens, dots)")
    if labels[-1].isdigit():
        raise ValueError("expected a DNS domain name like contoso.com, not an IP address")
    return name


def _check_secret_ref(value: str) -> str:
    try:
        return str(parse_secret_ref(value))
    except InputError as exc:
        raise ValueError(exc.message) from None


Guid = Annotated[str, AfterValidator(_check_guid)]
"""A GUID, stored lower-case."""
DomainName = Annotated[str, AfterValidator(_check_domain)]
"""A DNS domain name, stored lower-case without a trailing dot."""
SecretReference = Annotated[str, AfterValidator(_check_secret_ref)]
"""A secret reference (``env:``, ``file:``, ``keyring:``, ``prompt``); ``file:`` paths stay as
written — :class:`ServerSpec` and :class:`CredentialSpec` make them absolute."""


def _base_dir(info: ValidationInfo) -> Path | None:
    ctx = info.context or {}
    base = ctx.get("base_dir")
    return Path(base) if base is not None else None


def _source(info: ValidationInfo) -> str:
    return str((info.context or {}).get("source") or "the inventory")


def _absolute(path: str | Path, info: ValidationInfo) -> Path:
    p = Path(path).expanduser()
    if not p.is_absolute():
        base = _base_dir(info)
        p = (base / p) if base is not None else p
    return p.resolve()


def _existing_file(value: Any, info: ValidationInfo, what: str) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, (str, Path)) or not str(value).strip():
        raise ValueError(f"expected the path of {what}")
    path = _absolute(str(value), info)
    if not path.exists():
        raise ValueError(f"{what} {path} does not exist; expected an existing file "
                         "(relative paths start at the inventory's folder)")
    if not path.is_file():
        raise ValueError(f"{path} is a folder; expected {what} file")
    return path


def _absolute_ref(ref: str | None, info: ValidationInfo) -> str | None:
    """A ``file:`` reference with its path made absolute; others unchanged."""
    if ref is None:
        return None
    parsed = parse_secret_ref(ref)
    if parsed.scheme == "file":
        return f"file:{_absolute(parsed.target, info)}"
    return str(parsed)


def _check_url(value: str, *, allow_http: bool, where: str, info: ValidationInfo) -> str:
    text = value.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("expected an https:// URL with a host name, e.g. https://sharepoint.contoso.com")
    if parts.username or parts.password:
        # Never echo what may be a password: the message names the problem only.
        raise ValueError("a URL must not carry a user name or password; put them in username/password")
    try:
        parts.port
    except ValueError:
        raise ValueError("the port is not a number between 0 and 65535") from None
    if parts.scheme == "http":
        if not allow_http:
            raise ValueError(
                "expected an https:// URL; http:// sends tokens and passwords in clear text "
                "(set allow_http: true on this entry only if you accept that, e.g. in a lab)"
            )
        message = f"{_source(info)}: {where} uses http:// ({text}); traffic is not encrypted"
        warnings.warn(message, InsecureTransportWarning, stacklevel=2)
        log.warning("%s", message)
    return text


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=False)


# --------------------------------------------------------------------------------------------
# Inventory models


class ServerSpec(_Model):
    """One Windows server the runbooks reach over PowerShell remoting."""

    name: str = Field(description="the inventory name (the key under servers:)")
    role: Role
    winrm: str = Field(description="the WinRM endpoint, e.g. https://sp-a.contoso.com:5986/wsman")
    auth: AuthMethod = "ntlm"
    username: str | None = None
    password: SecretReference | None = None
    ca_bundle: Path | None = None
    web_url: str | None = None
    allow_http: bool = Field(default=False, strict=True)
    configuration: str = Field(
        default=POWERSHELL_CONFIGURATION,
        description="the PowerShell session configuration to open (Exchange: Microsoft.Exchange at /PowerShell)")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("expected a name of letters, digits, '.', '_' and '-'")
        return value

    @field_validator("configuration")
    @classmethod
    def _configuration(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("expected a session configuration name of letters, digits, '.', '_' and '-', "
                             "e.g. Microsoft.PowerShell or Microsoft.Exchange")
        return value

    @field_validator("ca_bundle", mode="before")
    @classmethod
    def _ca_bundle(cls, value: Any, info: ValidationInfo) -> Path | None:
        return _existing_file(value, info, "the CA bundle")

    @field_validator("password")
    @classmethod
    def _password(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _absolute_ref(value, info)

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> "ServerSpec":
        where = f"servers.{self.name}"
        _field_check(self, "winrm", lambda v: _check_url(
            v, allow_http=self.allow_http, where=f"{where}.winrm", info=info))
        if self.web_url is not None:
            _field_check(self, "web_url", lambda v: _check_url(
                v, allow_http=self.allow_http, where=f"{where}.web_url", info=info))
        if self.auth in ("basic", "ntlm", "credssp", "kerberos") and not self.username:
            raise _FieldError("username", f"auth {self.auth} needs a username (e.g. CONTOSO\\spadmin)")
        if self.auth in ("basic", "ntlm", "credssp") and self.password is None:
            raise _FieldError(
                "password",
                f"auth {self.auth} needs a password reference (env:NAME, file:PATH, "
                "keyring:SERVICE/NAME or prompt)",
            )
        return self


class CredentialSpec(_Model):
    """How the runbooks sign in to Entra ID for a tenant."""

    type: CredentialType
    client_id: Guid | None = None
    secret: SecretReference | None = None
    #: A certificate file (PFX/PEM/DER), as a plain path or a ``file:`` reference; absolute.
    certificate: str | None = None
    certificate_password: SecretReference | None = None

    @field_validator("secret", "certificate_password")
    @classmethod
    def _refs(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _absolute_ref(value, info)

    @field_validator("certificate")
    @classmethod
    def _certificate(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        text = value
        scheme = text.split(":", 1)[0] if ":" in text else ""
        if scheme == "file":
            text = text[len("file:"):]
        elif scheme in ("env", "keyring") or text == "prompt":
            raise ValueError("expected the path of a certificate file (PFX, PEM or DER), "
                             "as PATH or file:PATH")
        path = _existing_file(text, info, "the certificate file")
        return str(path) if path is not None else None

    @property
    def certificate_path(self) -> Path | None:
        return Path(self.certificate) if self.certificate else None

    @model_validator(mode="after")
    def _needs(self) -> "CredentialSpec":
        if self.type != "azure_cli" and self.client_id is None:
            raise _FieldError("client_id", f"credential type {self.type} needs client_id "
                                           "(the application (client) ID, a GUID)")
        if self.type == "client_secret" and self.secret is None:
            raise _FieldError("secret", "credential type client_secret needs secret "
                                        "(a reference such as env:APP_SECRET)")
        if self.type == "certificate" and self.certificate is None:
            raise _FieldError("certificate", "credential type certificate needs certificate "
                                             "(the path of a PFX or PEM file)")
        for key in ("secret", "certificate", "certificate_password"):
            if getattr(self, key) is not None and not _uses(self.type, key):
                raise _FieldError(key, f"{key} is not used by credential type {self.type}; remove it")
        return self


def _uses(ctype: str, key: str) -> bool:
    return (ctype, key) in {
        ("client_secret", "secret"),
        ("certificate", "certificate"),
        ("certificate", "certificate_password"),
    }


class TenantSpec(_Model):
    """A Microsoft 365 tenant: its IDs, endpoints and the credential the runbooks use."""

    name: str
    tenant_id: Guid
    domain: DomainName
    authority: str = "https://login.microsoftonline.com"
    graph_url: str = "https://graph.microsoft.com/v1.0"
    #: Defaults to ACS's metadata for this tenant.
    acs_metadata_url: str = ""
    spo_url: str | None = None
    ca_bundle: Path | None = None
    credential: CredentialSpec
    allow_http: bool = Field(default=False, strict=True)

    @field_validator("ca_bundle", mode="before")
    @classmethod
    def _ca_bundle(cls, value: Any, info: ValidationInfo) -> Path | None:
        return _existing_file(value, info, "the CA bundle")

    @model_validator(mode="after")
    def _urls(self, info: ValidationInfo) -> "TenantSpec":
        if not self.acs_metadata_url:
            self.acs_metadata_url = (
                f"https://accounts.accesscontrol.windows.net/{self.tenant_id}/metadata/json/1"
            )
        where = f"tenants.{self.name}"
        for key in ("authority", "graph_url", "acs_metadata_url", "spo_url"):
            if getattr(self, key) is not None:
                _field_check(self, key, lambda v, k=key: _check_url(
                    v, allow_http=self.allow_http, where=f"{where}.{k}", info=info))
        self.authority = self.authority.rstrip("/")
        self.graph_url = self.graph_url.rstrip("/")
        return self


class Inventory(_Model):
    """Every server and tenant the runbooks may touch, by inventory name."""

    servers: dict[str, ServerSpec] = Field(default_factory=dict)
    tenants: dict[str, TenantSpec] = Field(default_factory=dict)
    #: The file this inventory was loaded from (absolute); None when built in memory.
    path: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _names(cls, data: Any) -> Any:
        # The name is the key; copy it into each entry so a spec knows who it is.
        if isinstance(data, Mapping):
            data = dict(data)
            for section in ("servers", "tenants"):
                entries = data.get(section)
                if entries is None and section in data:
                    data[section] = {}
                elif isinstance(entries, Mapping):
                    data[section] = {
                        str(k): ({**v, "name": str(k)} if isinstance(v, Mapping) else v)
                        for k, v in entries.items()
                    }
        return data

    @property
    def base_dir(self) -> Path | None:
        return self.path.parent if self.path else None

    def server(self, name: str) -> ServerSpec:
        """The server called ``name``; :class:`InputError` naming the known ones if there is none."""
        try:
            return self.servers[name]
        except KeyError:
            raise self._unknown("servers", name, list(self.servers)) from None

    def tenant(self, name: str) -> TenantSpec:
        """The tenant called ``name``; :class:`InputError` naming the known ones if there is none."""
        try:
            return self.tenants[name]
        except KeyError:
            raise self._unknown("tenants", name, list(self.tenants)) from None

    def servers_with_role(self, role: Role) -> list[ServerSpec]:
        return [s for s in self.servers.values() if s.role == role]

    def _unknown(self, section: str, name: str, known: list[str]) -> InputError:
        close = difflib.get_close_matches(str(name), known, n=1)
        guess = f"; did you mean {close[0]!r}?" if close else ""
        return InputError(
            f"there is no entry {name!r} under {section}{guess} (known: {', '.join(known) or 'none'})",
            hint=f"add it to the inventory under {section}: or use one of the known names",
            source=str(self.path) if self.path else None,
            field=f"{section}.{name}",
        )


class _FieldError(ValueError):
    """Raised in a model validator to blame one field of that model, not the model."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


def _field_check(model: BaseModel, key: str, check: Any) -> None:
    value = getattr(model, key)
    try:
        setattr(model, key, check(value))
    except ValueError as exc:
        raise _FieldError(key, str(exc)) from None


# --------------------------------------------------------------------------------------------
# Loading


class _StrictLoader(yaml.SafeLoader):
    """safe_load that refuses duplicate keys: the second sp-a must not silently win."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a plain value", key_node.start_mark
            ) from None
        if key in seen:
            raise yaml.constructor.ConstructorError(
                f"the key {key!r} first defined at line {seen[key]}", node.start_mark,
                "appears again", key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: str | Path, *, what: str = "inventory", allow_empty: bool = False) -> dict[str, Any]:
    """Read a YAML mapping with safe_load semantics; every failure is an :class:`InputError`."""
    p = Path(path)
    source = str(p)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"the {what} file does not exist", hint="check the path",
                         source=source) from None
    except IsADirectoryError:
        raise InputError(f"this is a folder; expected the {what} file", source=source) from None
    except UnicodeDecodeError:
        raise InputError(f"the {what} file is not UTF-8 text", source=source) from None
    except OSError as exc:
        raise InputError(f"the {what} file cannot be read ({exc.strerror})", source=source) from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "an unknown place"
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise InputError(f"is not valid YAML at {where}: {problem}",
                         hint="fix the YAML syntax (indentation, colons, quotes)",
                         source=source) from None
    except yaml.YAMLError as exc:
        raise InputError(f"is not valid YAML: {exc}", source=source) from None
    if data is None:
        if allow_empty:
            return {}
        raise InputError(f"the {what} file is empty; expected a YAML mapping"
                         + (" with servers: and tenants:" if what == "inventory" else ""),
                         source=source)
    if not isinstance(data, dict):
        raise InputError(f"expected a YAML mapping (key: value lines) at the top, found "
                         f"{_kind(data)}", source=source)
    return data


def load_inventory(path: str | Path) -> Inventory:
    """Load and validate an inventory file; relative paths are taken from its folder."""
    p = Path(path).expanduser().resolve()
    data = read_yaml(p, what="inventory")
    if "path" in data:
        raise InputError("unknown key 'path' (the inventory's own path is not set in it)",
                         source=str(p), field="path")
    inventory = _validate(Inventory, data, source=str(p), base_dir=p.parent)
    inventory.path = p
    return inventory


def load_parameters(
    path_or_dict: str | Path | Mapping[str, Any],
    model: type[M],
    *,
    source: str,
    base_dir: str | Path | None = None,
) -> M:
    """Validate scenario parameters from a YAML file or a dict into ``model``.

    An empty file means "all defaults". Relative paths are taken from the file's folder
    (or ``base_dir``).
    """
    if isinstance(path_or_dict, Mapping):
        data = dict(path_or_dict)
    else:
        p = Path(path_or_dict).expanduser().resolve()
        data = read_yaml(p, what="parameters", allow_empty=True)
        base_dir = base_dir or p.parent
    return _validate(model, data, source=source, base_dir=Path(base_dir) if base_dir else None)


def _validate(model: type[M], data: Any, *, source: str, base_dir: Path | None) -> M:
    try:
        return model.model_validate(data, context={"source": source, "base_dir": base_dir})
    except ValidationError as exc:
        raise input_error_from_validation(exc, source=source, model=model) from None


def apply_overrides(data: Mapping[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``data`` with each ``KEY=VALUE`` applied; dotted keys reach into mappings.

    Values are read as YAML, so ``true``, ``3`` and ``[a, b]`` have their types; anything that
    is not valid YAML is taken as text.
    """
    result = copy.deepcopy(dict(data))
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        source = "-p"
        if not sep or not key:
            raise InputError(
                f"{item!r} is not KEY=VALUE", hint="write -p key=value, e.g. -p mode=plan",
                source=source,
            )
        parts = key.split(".")
        if any(not part.strip() for part in parts):
            raise InputError(f"{key!r} has an empty part; expected dotted keys like tenant.name",
                             source=source, field=key)
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        target: dict[str, Any] = result
        for i, part in enumerate(parts[:-1]):
            nxt = target.get(part)
            if nxt is None:
                nxt = target[part] = {}
            if not isinstance(nxt, dict):
                raise InputError(
                    f"cannot set {key!r}: {'.'.join(parts[: i + 1])} is {_kind(nxt)}, not a mapping",
                    source=source, field=key,
                )
            target = nxt
        target[parts[-1]] = value
    return result


# --------------------------------------------------------------------------------------------
# ValidationError → InputError


def input_error_from_validation(
    exc: ValidationError, *, source: str | None, model: type[BaseModel] | None = None
) -> InputError:
    """One :class:`InputError` in plain words: the first problem's field, then any others."""
    errors = exc.errors(include_url=False)
    # An unknown key is usually a typo that also explains a "missing" one: report it first.
    errors.sort(key=lambda e: e.get("type") != "extra_forbidden")
    problems = [_describe(err, model) for err in errors]
    # Several errors may point at one field (e.g. a union); keep the first per field.
    seen: dict[str, str] = {}
    for field, text in problems:
        seen.setdefault(field, text)
    (first_field, first_text), *rest = seen.items()
    message = first_text
    if rest:
        message += "".join(f"\n  also {field}: {text}" for field, text in rest)
    return InputError(message, source=source, field=first_field or None,
                      hint="correct the value and run again; nothing was contacted")


def _describe(err: Mapping[str, Any], model: type[BaseModel] | None) -> tuple[str, str]:
    loc = [str(p) for p in err.get("loc", ())]
    etype = err.get("type", "")
    ctx = err.get("ctx") or {}
    value = err.get("input")
    original = ctx.get("error")
    if isinstance(original, _FieldError):
        # A model-level check that blames one of the model's keys.
        loc = loc + [original.key]
        if isinstance(value, BaseModel):
            value = getattr(value, original.key, None)
        elif isinstance(value, Mapping):
            value = value.get(original.key)
    field = ".".join(loc)
    key = loc[-1] if loc else ""
    secret = key in SECRET_KEYS

    if etype == "missing":
        return field, "is required but missing"
    if etype == "extra_forbidden":
        allowed = _allowed_keys(model, loc[:-1])
        close = difflib.get_close_matches(key, allowed, n=1)
        guess = f"; did you mean {close[0]!r}?" if close else ""
        listing = f" (expected one of: {', '.join(allowed)})" if allowed else ""
        return field, f"unknown key {key!r}{guess}{listing}"

    scalar = value is not None and not isinstance(value, (dict, list, tuple, Mapping, BaseModel))
    # Secrets' values are never shown; containers are described by their kind instead.
    shown = f"{_show(value)}: " if scalar and not secret else ""
    found = f", found {_kind(value)}" if not scalar and value is not None and not secret else ""
    if original is not None:
        return field, f"{shown}{getattr(original, 'message', original)}{found}"
    expected = _EXPECTED_BY_TYPE.get(etype)
    if expected is None and etype == "literal_error":
        expected = f"expected one of {ctx.get('expected', '')}"
    if expected is None:
        expected = _plain(str(err.get("msg", "is not valid")))
    if secret and etype == "string_type":
        expected = (f"expected a secret reference ({_REF_FORMS}); the value is not shown, "
                    "it may be a password")
    return field, f"{shown}{expected}{found}"


_REF_FORMS = "env:NAME, file:PATH, keyring:SERVICE/NAME or prompt"


_EXPECTED_BY_TYPE = {
    "string_type": "expected text",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "dict_type": "expected a mapping (key: value lines)",
    "model_type": "expected a mapping (key: value lines)",
    "model_attributes_type": "expected a mapping (key: value lines)",
    "list_type": "expected a list",
    "path_type": "expected a file path",
    "none_required": "expected no value",
}


def _plain(msg: str) -> str:
    msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if msg.startswith("Input should be "):
        msg = "expected " + msg[len("Input should be "):]
    return msg[0].lower() + msg[1:] if msg else msg


_URL_USERINFO = re.compile(r"(://[^/@:\s]*):[^/@\s]*@")


def _show(value: Any) -> str:
    text = repr(value)
    # A URL with user:password@ is shown with the password masked.
    text = _URL_USERINFO.sub(r"\1:********@", text)
    return text if len(text) <= 80 else text[:77] + "…"


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, bool):
        return f"true/false ({str(value).lower()})"
    if isinstance(value, (dict, Mapping, BaseModel)):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, (int, float)):
        return f"a number ({value})"
    if isinstance(value, str):
        return "text"
    return type(value).__name__


def _allowed_keys(model: type[BaseModel] | None, loc: list[str]) -> list[str]:
    """The keys the model accepts at ``loc`` (walking through nested models and dicts)."""
    current: Any = model
    i = 0
    while current is not None and i < len(loc):
        fields: dict[str, FieldInfo] = getattr(current, "model_fields", {})
        info = fields.get(loc[i])
        if info is None:
            return []
        current, consumed = _inner_model(info.annotation)
        i += 1 + consumed  # a dict[str, Model] also consumes the entry's key
    if current is None or not hasattr(current, "model_fields"):
        return []
    hidden = {"name"} if current in (ServerSpec, TenantSpec) else set()
    if current is Inventory:
        hidden.add("path")
    return [k for k in current.model_fields if k not in hidden]


def _inner_model(annotation: Any) -> tuple[Any, int]:
    import typing

    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, 0
    if origin in (dict, Mapping) and len(args) == 2:
        inner, _ = _inner_model(args[1])
        return inner, 1
    if args:  # Optional[Model], Annotated[Model, …]
        for arg in args:
            inner, consumed = _inner_model(arg)
            if inner is not None:
                return inner, consumed
    return None, 0

