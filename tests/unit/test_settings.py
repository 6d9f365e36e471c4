"""One name per concept across the services, with the old names accepted for one release; and the
router's upstreams read for every modality of the table."""

from __future__ import annotations

import pytest

from nexa_audio.settings import Settings as AudioSettings
from nexa_common.modalities import MODALITIES, Modality
from nexa_image.settings import Settings as ImageSettings
from nexa_router.settings import Settings as RouterSettings
from nexa_text.settings import Settings as TextSettings

OLD_NAMES = [
    (TextSettings, "n_threads", "NEXA_TEXT_N_THREADS", "NEXA_TEXT_THREADS"),
    (ImageSettings, "num_threads", "NEXA_IMAGE_NUM_THREADS", "NEXA_IMAGE_THREADS"),
    (AudioSettings, "cpu_threads", "NEXA_AUDIO_CPU_THREADS", "NEXA_AUDIO_THREADS"),
]


@pytest.mark.parametrize(("settings", "keyword", "old_env", "new_env"), OLD_NAMES)
def test_old_thread_settings_still_work(
    settings: type[TextSettings], keyword: str, old_env: str, new_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert settings(**{keyword: 3}).threads == 3
    monkeypatch.setenv(old_env, "5")
    assert settings().threads == 5
    monkeypatch.setenv(new_env, "7")
    assert settings().threads == 7  # the new name wins


@pytest.mark.parametrize("settings", [TextSettings, ImageSettings, AudioSettings])
def test_every_service_has_the_same_names_for_the_same_things(settings: type[TextSettings]) -> None:
    fields = set(settings.model_fields)
    assert {"threads", "max_concurrency", "queue_size", "retry_after_s", "model", "cache_dir"} <= fields
    assert not fields & {"n_threads", "num_threads", "cpu_threads"}


def test_router_upstreams_come_from_one_variable_per_modality(monkeypatch: pytest.MonkeyPatch) -> None:
    for spec in MODALITIES:
        monkeypatch.setenv(spec.router_url_env, f"http://127.0.0.1:{spec.port}/")
    assert RouterSettings().upstream_urls() == {s.modality: f"http://127.0.0.1:{s.port}" for s in MODALITIES}
    monkeypatch.setenv("NEXA_ROUTER_IMAGE_URL", "")  # empty turns a modality off
    assert Modality.IMAGE not in RouterSettings().upstream_urls()
    assert RouterSettings(text_url="http://a:1").upstream_urls()[Modality.TEXT] == "http://a:1"  # arguments win
