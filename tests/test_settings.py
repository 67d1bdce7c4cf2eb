"""Settings: every field is documented in the README, and the environment is read as documented."""

from __future__ import annotations

from conftest import REPO

from assistant.settings import Settings, env_name


def test_every_setting_is_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names = [env_name(name)]
        if alias is not None:
            names += [c for c in getattr(alias, "choices", [alias]) if str(c).isupper()]
        assert any(f"`{n}`" in readme or f"{n}`" in readme for n in names), name


def test_environment_names(monkeypatch) -> None:
    monkeypatch.setenv("ASSISTANT_INDEX", "/tmp/x")
    monkeypatch.setenv("ASSISTANT_MODEL", "llama3")
    monkeypatch.setenv("CHROMA_HOST", "127.0.0.1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    settings = Settings()
    assert str(settings.index_dir) == "/tmp/x" and settings.model == "llama3"
    assert settings.chroma_host == "127.0.0.1" and settings.backend == "openai"
    assert "sk-secret" not in repr(settings) and "sk-secret" not in settings.model_dump_json()
