"""The error tree. Every error the user can see carries a `hint` saying what to do.

```
AuditorError                      exit code
├── UsageError                    2  bad flag or argument
│   └── ConfigError               2  bad auditor.toml / AUDITOR_* value (names key and file)
├── DefinitionError               2  a packaged data file (queries/, reports/) is invalid
├── AuthError                     3  no token: wrong tenant, client id, secret, consent
├── WriteError                    3  a report, export or store file could not be written
└── CollectionError               3  a request to the tenant failed for good
    ├── HttpStatusError           3  the API answered with an error status
    │   ├── BadRequest            3  400: the query was rejected
    │   ├── Unauthorized          3  401 even after a token refresh
    │   ├── PermissionDenied      3  403: a privilege is missing (hint names it)
    │   ├── NotFound              3  404: wrong URL, environment or resource
    │   ├── Throttled             3  429 until the retry budget ran out
    │   └── ServiceUnavailable    3  5xx / 408 until the retry budget ran out
    ├── TransportFailure          3  timeouts, resets, TLS errors until the budget ran out
    └── BadResponse               3  the body is not the JSON the API documents
```

httpx exceptions are converted at the boundary (`auditor.http`, `auditor.http_errors`) with
`raise ... from`, so a traceback (shown only with `--debug`) keeps the cause. Library code never
prints or exits; the CLI turns these into one line, the hint, and the exit code.
"""

from __future__ import annotations


class AuditorError(Exception):
    """Base of every error the auditor raises on purpose."""

    exit_code = 3
    default_hint = "Run again with --debug for the full traceback."

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint or self.default_hint


class UsageError(AuditorError):
    """A flag or argument the auditor cannot use."""

    exit_code = 2
    default_hint = "See `auditor --help`."


class ConfigError(UsageError):
    """A configuration value is wrong; names the key and where it came from."""

    default_hint = "See the configuration reference in the README."

    def __init__(self, key: str, source: str, expected: str, *, hint: str | None = None) -> None:
        super().__init__(f"{source}: `{key}` {expected}", hint=hint)
        self.key = key
        self.source = source


class DefinitionError(AuditorError):
    """A data file shipped with the auditor (queries/, reports/) is invalid."""

    exit_code = 2
    default_hint = "The installation is damaged or was edited; reinstall the auditor."


class AuthError(AuditorError):
    """No access token could be obtained."""

    exit_code = 3
    default_hint = (
        "Check the tenant id, the client id and the secret or certificate, and that the app "
        "registration has admin consent."
    )


class WriteError(AuditorError):
    """A file the auditor writes (a report, an export, the store) could not be written, or
    its path is a link or names something that is not a folder."""

    exit_code = 3
    default_hint = "Choose a writable folder with free space (--out), then run again."


class CollectionError(AuditorError):
    """A request to the tenant failed and retrying did not help."""

    exit_code = 3
    default_hint = "Check the URL in the configuration and the network, then run again."


class HttpStatusError(CollectionError):
    """The API answered with an error status; carries the status, URL and the API's error."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        url: str,
        api_code: str | None = None,
        api_message: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.url = url
        self.api_code = api_code
        self.api_message = api_message


class BadRequest(HttpStatusError):
    """400: the API rejected the query."""

    default_hint = "The query was rejected; the API's message above says which part."


class Unauthorized(HttpStatusError):
    """401 even with a freshly acquired token."""

    default_hint = (
        "The token was refused. For Dataverse, the app needs an application user in the "
        "environment; for the flow and admin APIs, the app needs admin consent."
    )


class PermissionDenied(HttpStatusError):
    """403: the signed-in identity lacks a privilege."""

    default_hint = "Grant the application user the missing read privilege, then run again."


class NotFound(HttpStatusError):
    """404: the URL, environment or resource does not exist."""

    default_hint = "Check the environment id and the Dataverse URL in the configuration."


class Throttled(HttpStatusError):
    """429 answers went on past the retry budget."""

    default_hint = (
        "The service kept throttling. Lower --max-concurrency, or run when the tenant is "
        "quieter; progress is saved, so running again resumes."
    )


class ServiceUnavailable(HttpStatusError):
    """5xx or 408 answers went on past the retry budget."""

    default_hint = "The service kept failing; progress is saved, so running again resumes."


class TransportFailure(CollectionError):
    """Timeouts, connection resets or TLS failures went on past the retry budget."""

    default_hint = (
        "Check the network and the URL. For a private CA (such as the simulator's), set "
        "SSL_CERT_FILE or `http.ca_bundle` to its certificate."
    )


class BadResponse(CollectionError):
    """The response body is not the JSON the API documents."""

    default_hint = "The API sent a malformed answer; progress is saved, so running again resumes."


class Terminated(KeyboardInterrupt):
    """SIGTERM stopped the command (a scheduler ending the job); handled as Ctrl-C is."""
