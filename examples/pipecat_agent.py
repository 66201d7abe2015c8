"""A pipecat voice agent with a posetalk avatar: speech in from a transport, an LLM's reply spoken
by a TTS, the avatar's picture and the reply's audio out through the same transport, in step.

Needs a running avatar server (`.venv/bin/posetalk serve`) and the adapters' environment
(`.venv-agents`, made by scripts/setup). The STT, LLM and TTS services named here need their own
pipecat extras and API keys (not installed by scripts/setup); any pipecat services that emit
TTSAudioRawFrame work the same way. Run:

    .venv-agents/bin/python examples/pipecat_agent.py --server http://127.0.0.1:8080
"""

from __future__ import annotations

import argparse
import asyncio
import os

from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import WorkerRunner
from pipecat.pipeline.worker import PipelineWorker
from posetalk_agents.pipecat import PosetalkVideoService


async def main(server: str, prompt: str) -> None:
    # Services with their own extras: pip install "pipecat-ai[daily,deepgram,openai,cartesia]"
    from pipecat.services.cartesia.tts import CartesiaTTSService
    from pipecat.services.deepgram.stt import DeepgramSTTService
    from pipecat.services.openai.llm import OpenAILLMService
    from pipecat.transports.daily.transport import DailyParams, DailyTransport

    transport = DailyTransport(os.environ["DAILY_ROOM_URL"], None, "posetalk avatar",
                               DailyParams(audio_in_enabled=True, audio_out_enabled=True, video_out_enabled=True,
                                           video_out_width=512, video_out_height=512))  # fmt: skip
    stt = DeepgramSTTService(api_key=os.environ["DEEPGRAM_API_KEY"])
    llm = OpenAILLMService(api_key=os.environ["OPENAI_API_KEY"])
    tts = CartesiaTTSService(api_key=os.environ["CARTESIA_API_KEY"], voice_id=os.environ["CARTESIA_VOICE_ID"])
    avatar = PosetalkVideoService(server, prompt=prompt, token=os.environ.get("POSETALK_TOKEN"))
    worker = PipelineWorker(Pipeline([transport.input(), stt, llm, tts, avatar, transport.output()]))
    runner = WorkerRunner()
    await runner.add_workers(worker)
    await runner.run()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--server", default="http://127.0.0.1:8080", help="what `posetalk serve` printed")
    p.add_argument("--prompt", default="calm, nods now and then", help="how the avatar's head moves")
    args = p.parse_args()
    asyncio.run(main(args.server, args.prompt))
