"""/metrics: the server's figures in Prometheus' text exposition format (version 0.0.4)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from posetalk.engine import EngineStats

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    body = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return "{" + body + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Exposition:
    """Builds one scrape: each metric family once, with HELP and TYPE before its samples."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str,
               samples: Iterable[tuple[Mapping[str, str], float]]) -> None:  # fmt: skip
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            self.lines.append(f"{name}{_labels(labels)} {value:.6g}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def render(
    engine: EngineStats, *, max_sessions: int, sessions: Mapping[str, int], counters: Mapping[str, int],
    media: Mapping[str, int], avatars: int,
) -> str:  # fmt: skip
    """The scrape for the engine's snapshot and the server's own counters."""
    e = Exposition()
    e.family("posetalk_sessions", "gauge", "Sessions open now, by transport.",
             [({"transport": t}, float(n)) for t, n in sorted(sessions.items())])  # fmt: skip
    e.family("posetalk_sessions_max", "gauge", "The server's session limit.", [({}, float(max_sessions))])
    e.family("posetalk_avatars", "gauge", "Portraits prepared and held in memory.", [({}, float(avatars))])
    e.family("posetalk_pipeline_latency_seconds", "gauge",
             "The engine's stated audio-in to frame-out latency (lookahead + one frame + budget).",
             [({}, engine.latency_ms / 1000.0)])  # fmt: skip
    e.family("posetalk_stage_seconds", "gauge",
             "Per-stage durations over the recent window (latency: audio in to frame out).",
             [({"stage": name, "quantile": q}, v / 1000.0) for name, s in sorted(engine.stages.items())
              for q, v in (("0.5", s.p50_ms), ("0.95", s.p95_ms), ("1", s.max_ms))])  # fmt: skip
    e.family("posetalk_stage_count_total", "counter", "Samples recorded per stage.",
             [({"stage": name}, float(s.count)) for name, s in sorted(engine.stages.items())])  # fmt: skip
    e.family("posetalk_engine_events_total", "counter", "Engine events (late ticks, repeated or discarded frames).",
             [({"event": k}, float(v)) for k, v in sorted(engine.counters.items())])  # fmt: skip
    e.family("posetalk_server_events_total", "counter",
             "Server events (sessions opened, refused, closed; uploads; bad requests).",
             [({"event": k}, float(v)) for k, v in sorted(counters.items())])  # fmt: skip
    e.family("posetalk_media_total", "counter", "Outgoing media over sessions since start.",
             [({"what": k}, float(v)) for k, v in sorted(media.items())])  # fmt: skip
    return e.text()
