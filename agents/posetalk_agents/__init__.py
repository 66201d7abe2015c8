"""posetalk avatars in voice-agent frameworks, as thin clients of a running `posetalk serve`
(the avatar's models run there): ``client.PosetalkClient`` for any asyncio program,
``pipecat.PosetalkVideoService`` for pipecat pipelines."""

from posetalk_agents.client import AvatarFrame, PosetalkClient, PosetalkError

__all__ = ["AvatarFrame", "PosetalkClient", "PosetalkError"]
