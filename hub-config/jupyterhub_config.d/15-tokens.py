"""Living tokens: the access-token endpoint for servers and jobs, the *sign in again* page.

The scope that lets a server's own token read its user's access token is granted after all
layers (``continuum_hub.token_api.add_token_scopes``, called by ``jupyterhub_config.py``).
"""

from continuum_hub.token_api import install_token_handlers

install_token_handlers()
