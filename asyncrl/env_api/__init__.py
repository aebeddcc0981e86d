"""The env contract: how the trainer builds envs (``env.factory``), reads their spaces, and what a multi-agent
env returns. Env integrations (``asyncrl_envs``, a user's own factory) implement it; nothing here knows them."""
