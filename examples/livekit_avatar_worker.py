"""A LiveKit avatar worker with a posetalk face: it joins the room the agent dispatched it to,
takes the agent's speech over LiveKit's data stream, and publishes the avatar's video and that
speech in step (LiveKit Agents' AvatarRunner with posetalk's VideoGenerator).

Needs a running avatar server (`.venv/bin/posetalk serve`), the adapters' environment
(`.venv-agents`, made by scripts/setup) and a LiveKit server with LIVEKIT_URL, LIVEKIT_API_KEY
and LIVEKIT_API_SECRET set (none can be installed here, so this was not run). Run:

    POSETALK_URL=http://127.0.0.1:8080 .venv-agents/bin/python examples/livekit_avatar_worker.py start
"""

from __future__ import annotations

import os

from livekit.agents import JobContext, WorkerOptions, cli
from livekit.agents.voice.avatar import AvatarOptions, AvatarRunner, DataStreamAudioReceiver
from posetalk_agents.livekit import PosetalkVideoGenerator


async def entrypoint(ctx: JobContext) -> None:
    await ctx.connect()
    generator = await PosetalkVideoGenerator(os.environ.get("POSETALK_URL", "http://127.0.0.1:8080"),
                                             prompt=os.environ.get("POSETALK_PROMPT", "calm, nods now and then"),
                                             token=os.environ.get("POSETALK_TOKEN")).connect()  # fmt: skip
    options = AvatarOptions(video_width=512, video_height=512, video_fps=25, audio_sample_rate=48000, audio_channels=1)
    runner = AvatarRunner(ctx.room, audio_recv=DataStreamAudioReceiver(ctx.room), video_gen=generator, options=options)
    ctx.add_shutdown_callback(generator.aclose)
    await runner.start()


if __name__ == "__main__":
    cli.run_app(WorkerOptions(entrypoint_fnc=entrypoint))
