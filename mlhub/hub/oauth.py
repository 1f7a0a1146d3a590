"""OAuthenticator's GitHub, GitLab and generic (OpenID Connect) authenticators with a state
cookie that no sibling origin can set.

OAuthenticator keeps the login's state (its id, the PKCE verifier, where to go next) in a
signed cookie named ``oauthenticator-state`` and checks the callback's ``state`` against it.
With per-user origins every user's workspace is a sibling origin of the hub
(``<user>.<host>``), and a page there may set a cookie for the whole domain. Mallory can then
plant her own signed state in a victim's browser and send the victim to the callback with
her code: the victim is logged in as mallory (login CSRF; ``tests/test_idp_oidc.py``). Where
the hub's own cookies are ``__Host-`` cookies (HTTPS with per-user origins, JupyterHub's
``cookie_host_prefix_enabled``), the state cookie is one too: browsers refuse a ``__Host-``
cookie from any other host. See docs/decisions/authenticators.md.
"""

from __future__ import annotations

from typing import Any

from oauthenticator.generic import GenericOAuthenticator
from oauthenticator.github import GitHubOAuthenticator
from oauthenticator.gitlab import GitLabOAuthenticator
from oauthenticator.oauth2 import STATE_COOKIE_NAME, OAuthCallbackHandler, OAuthLoginHandler


def state_cookie_name(handler: Any) -> str:
    """``__Host-oauthenticator-state`` where the hub's cookies carry the prefix, else upstream's name."""
    prefix = "__Host-" if handler.settings.get("cookie_host_prefix_enabled") else ""
    return prefix + STATE_COOKIE_NAME


class MLHubOAuthLoginHandler(OAuthLoginHandler):
    def set_state_cookie(self, state_cookie_value: str) -> None:
        self._set_cookie(state_cookie_name(self), state_cookie_value, expires_days=1, httponly=True)


class MLHubOAuthCallbackHandler(OAuthCallbackHandler):
    def get_state_cookie(self) -> str:
        """The state from the hub's own state cookie only (a tossed ``oauthenticator-state`` is
        ignored when the ``__Host-`` name is in use)."""
        if self._state_cookie is None:
            name = state_cookie_name(self)
            self._state_cookie = (self.get_secure_cookie(name) or b"").decode("utf8", "replace")
            self.clear_cookie(name)
        return self._state_cookie


class MLHubGitHubOAuthenticator(GitHubOAuthenticator):
    login_handler = MLHubOAuthLoginHandler
    callback_handler = MLHubOAuthCallbackHandler


class MLHubGitLabOAuthenticator(GitLabOAuthenticator):
    login_handler = MLHubOAuthLoginHandler
    callback_handler = MLHubOAuthCallbackHandler


class MLHubGenericOAuthenticator(GenericOAuthenticator):
    login_handler = MLHubOAuthLoginHandler
    callback_handler = MLHubOAuthCallbackHandler
