#!/usr/bin/python3
# An independent cunīcu signaling server (WIRE.md §5) on grpcio's asyncio server with generic
# handlers (no generated stubs): one topic per recipient key, an empty sync envelope first on every
# subscription, fan-out while the stream is open, nothing stored. It never opens envelopes.
# First stdout line: {"type":"listening","address":"127.0.0.1:PORT"}. SIGTERM/SIGINT: exit 0.
import argparse
import asyncio
import platform
import signal
import sys

try:
    import grpc
    import grpc.aio
except ImportError as exc:  # pragma: no cover
    sys.exit(f"python3-grpcio is missing ({exc}): apt-get install -y python3-grpcio")

import wire
from wire import emit

QUEUE_LIMIT = 1024  # per subscriber; the oldest envelope is dropped beyond it


class Topics:
    def __init__(self) -> None:
        self.subscribers: dict[bytes, set[asyncio.Queue]] = {}
        self.delivered = 0
        self.dropped = 0

    async def subscribe(self, params, context):
        if len(params.key) != wire.KEY_LENGTH:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"key must be {wire.KEY_LENGTH} bytes, got {len(params.key)}")
        queue: asyncio.Queue = asyncio.Queue(QUEUE_LIMIT)
        topic = self.subscribers.setdefault(params.key, set())
        topic.add(queue)
        try:
            yield wire.Envelope()  # the sync envelope: the subscription is live
            while True:
                yield await queue.get()
        finally:
            topic.discard(queue)
            if not topic:
                self.subscribers.pop(params.key, None)

    async def publish(self, envelope, context):
        for field in ("sender", "recipient"):
            size = len(getattr(envelope, field))
            if size != wire.KEY_LENGTH:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{field} must be {wire.KEY_LENGTH} bytes, got {size}")
        for queue in self.subscribers.get(envelope.recipient, ()):
            if queue.full():
                queue.get_nowait()
                self.dropped += 1
            queue.put_nowait(envelope)
            self.delivered += 1
        return wire.Empty()

    async def build_info(self, _request, _context):
        return wire.BuildInfo(
            version="0.0.0-interop",
            commit="python",
            built_by="cunicu-ts test/interop/server.py (grpcio %s, Python %s)" % (grpc.__version__, platform.python_version()),
            os=platform.system().lower(),
            arch=platform.machine(),
        )


def serializer(message):
    return message.SerializeToString()


async def serve(listen: str) -> int:
    topics = Topics()
    handler = grpc.method_handlers_generic_handler(
        "cunicu.signaling.Signaling",
        {
            "Subscribe": grpc.unary_stream_rpc_method_handler(
                topics.subscribe, request_deserializer=wire.SubscribeParams.FromString, response_serializer=serializer
            ),
            "Publish": grpc.unary_unary_rpc_method_handler(
                topics.publish, request_deserializer=wire.Envelope.FromString, response_serializer=serializer
            ),
            "GetBuildInfo": grpc.unary_unary_rpc_method_handler(
                topics.build_info, request_deserializer=wire.Empty.FromString, response_serializer=serializer
            ),
        },
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port(listen)
    if port == 0:
        print(f"cannot listen on {listen}", file=sys.stderr)
        return 3
    await server.start()
    host = listen.rsplit(":", 1)[0]
    emit(type="listening", address=f"{host}:{port}")

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(grace=0.5)
    emit(type="stopped", delivered=topics.delivered, dropped=topics.dropped)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="server.py")
    parser.add_argument("--listen", default="127.0.0.1:0")
    args = parser.parse_args()
    return asyncio.run(serve(args.listen))


if __name__ == "__main__":
    sys.exit(main())
