"""A Jobs API client for a Ray cluster, with token authentication and one-line errors."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tunelab.errors import BadInputError, TunelabError, first_line

DEFAULT_ADDRESS = "http://127.0.0.1:8265"
DEFAULT_TOKEN_FILE = Path("~/.ray/auth_token")


class ClusterError(TunelabError):
    """The cluster could not be reached or refused us; the message says what to check."""

    exit_code = 2


def cluster_address(address: str | None) -> str:
    """The Jobs API address: the option, else RAY_ADDRESS if it is an http(s) URL, else local."""
    chosen = address or os.environ.get("RAY_ADDRESS", "")
    if not chosen.startswith(("http://", "https://")):
        if address:
            raise BadInputError(f"--address {address}: expected the head's Jobs API URL, e.g. http://HEAD:8265")
        chosen = DEFAULT_ADDRESS
    return chosen.rstrip("/")


def auth_token() -> str | None:
    """Ray's token, looked up as Ray does: RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return os.environ["RAY_AUTH_TOKEN"].strip()
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or DEFAULT_TOKEN_FILE).expanduser()
    if path.is_file():
        return path.read_text().strip() or None
    return None


@contextmanager
def cluster_errors(address: str) -> Iterator[None]:
    """Turn the Jobs API's exceptions into one line that says what to check."""
    import requests
    from ray.exceptions import AuthenticationError

    try:
        yield
    except AuthenticationError as exc:
        text = str(exc)
        if "Authentication failed" in text or "Invalid" in text:
            raise ClusterError(f"{address}: the cluster rejected the authentication token; check RAY_AUTH_TOKEN / RAY_AUTH_TOKEN_PATH") from None
        raise ClusterError(f"{address}: the cluster requires an authentication token; set RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH") from None
    except (ConnectionError, requests.exceptions.ConnectionError, requests.exceptions.Timeout):
        raise ClusterError(f"{address}: cannot reach the Ray Jobs API; is the head running and its dashboard port open?") from None
    except RuntimeError as exc:
        if "does not exist" in str(exc) or "not found" in str(exc).lower():
            raise BadInputError(f"{address}: {first_line(exc)}") from None
        raise ClusterError(f"{address}: {first_line(exc)}") from None


def jobs_client(address: str | None):  # type: ignore[no-untyped-def]
    """A connected `JobSubmissionClient`; the token (if any) goes in the Authorization header."""
    from ray.job_submission import JobSubmissionClient

    resolved = cluster_address(address)
    token = auth_token()
    headers = {"Authorization": f"Bearer {token}"} if token else None
    with cluster_errors(resolved):
        return JobSubmissionClient(resolved, headers=headers)
