"""Configuration, from ``POISE_*`` environment variables (or a ``.env`` file)."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Where poise keeps its data and finds its inputs."""

    model_config = SettingsConfigDict(env_prefix="POISE_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///poise.db"
    data_dir: Path = Path("../shared/data")
