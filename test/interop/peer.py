#!/usr/bin/python3
# An independent cunīcu-protocol peer (WIRE.md §4, §5, §7) and STUN client for the interop tests: grpcio's generic
# calls (no generated stubs), libsodium through PyNaCl, aioice for ICE. Output: NDJSON on stdout.
# Exit codes as cunicu-ts's: 0 ok, 2 bad input, 3 backend/publish error, 4 timeout, 5 session failed.
import argparse
import hashlib
import asyncio
import random
import string
import sys
import time

try:
    import grpc
    import grpc.aio
except ImportError as exc:  # pragma: no cover
    sys.exit(f"python3-grpcio is missing ({exc}): apt-get install -y python3-grpcio")

import wire
from wire import emit


def envelope_stub(channel, method, response):
    """A generic unary call on the Signaling service."""
    return channel.unary_unary(
        wire.SERVICE + method, request_serializer=lambda m: m.SerializeToString(), response_deserializer=response.FromString
    )


def rpc_error(exc: grpc.RpcError) -> dict:
    return {"code": exc.code().name, "details": exc.details()}


# ---------------------------------------------------------------- publish, buildinfo


def cmd_publish(args) -> int:
    ours = wire.private_key(args.key)
    theirs = wire.public_key(args.to)
    try:
        messages = [wire.message_from_json(text) for text in args.json]
    except Exception as exc:
        print(f"bad --json: {exc}", file=sys.stderr)
        return 2
    with grpc.insecure_channel(args.server) as channel:
        publish = envelope_stub(channel, "Publish", wire.Empty)
        for i, message in enumerate(messages):
            envelope = wire.seal(message, ours, theirs)
            if args.truncate_recipient:
                envelope.recipient = envelope.recipient[:31]
            try:
                publish(envelope, timeout=args.timeout)
            except grpc.RpcError as exc:
                emit(type="error", index=i, **rpc_error(exc))
                return 3
            emit(type="published", index=i, to=wire.b64(theirs), size=envelope.ByteSize())
    return 0


def cmd_buildinfo(args) -> int:
    with grpc.insecure_channel(args.server) as channel:
        try:
            info = envelope_stub(channel, "GetBuildInfo", wire.BuildInfo)(wire.Empty(), timeout=args.timeout)
        except grpc.RpcError as exc:
            emit(type="error", **rpc_error(exc))
            return 3
    emit(type="buildinfo", info=wire.message_to_json(info))
    return 0


# ---------------------------------------------------------------- subscribe


def cmd_subscribe(args) -> int:
    ours = wire.private_key(args.key)
    key = bytes(ours.public_key) if args.raw_key is None else wire.b64decode_any(args.raw_key)
    received = 0
    with grpc.insecure_channel(args.server) as channel:
        subscribe = channel.unary_stream(
            wire.SERVICE + "Subscribe", request_serializer=lambda m: m.SerializeToString(), response_deserializer=wire.Envelope.FromString
        )
        # The deadline bounds the whole stream: no loop here can outlive --timeout.
        stream = subscribe(wire.SubscribeParams(key=key), timeout=args.timeout)
        first = True
        try:
            for envelope in stream:
                if first:
                    first = False
                    if not wire.is_sync(envelope):
                        emit(type="error", message="the first envelope of a subscription is not the empty sync envelope")
                        return 5
                    emit(type="subscribed", key=wire.b64(ours.public_key))
                    continue
                try:
                    message = wire.open_envelope(envelope, ours)
                except ValueError as exc:
                    emit(type="error", message=str(exc), **{"from": wire.b64(envelope.sender)})
                    continue
                emit(type="message", to=wire.b64(envelope.recipient), message=wire.message_to_json(message), **{"from": wire.b64(envelope.sender)})
                received += 1
                if received >= args.count:
                    stream.cancel()
                    return 0
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                print(f"timed out after {args.timeout} s with {received} of {args.count} messages", file=sys.stderr)
                return 4
            emit(type="error", **rpc_error(exc))
            return 3
    print("the server ended the subscription", file=sys.stderr)
    return 3


# ---------------------------------------------------------------- session (WIRE.md §7 over aioice)

LETTERS = string.ascii_letters
CANDIDATE_TYPES = {"host": "HOST", "srflx": "SERVER_REFLEXIVE", "prflx": "PEER_REFLEXIVE", "relay": "RELAY"}
CANDIDATE_TYPES_BACK = {v: k for k, v in CANDIDATE_TYPES.items()}
NETWORK_TYPES = {"UDP4": ("udp", 4), "UDP6": ("udp", 6), "TCP4": ("tcp", 4), "TCP6": ("tcp", 6)}


def random_letters(n: int) -> str:
    rng = random.SystemRandom()
    return "".join(rng.choice(LETTERS) for _ in range(n))


def loopback_only(aioice_ice) -> None:
    """aioice.ice.get_host_addresses() skips 127.0.0.1 (and ::1), so on one host with only lo and an
    unroutable eth0 it would gather nothing usable. Both peers run on loopback here, as cunicu-ts's
    --loopback does: gather host candidates on 127.0.0.1 only. gather_candidates() looks the
    function up in its module at call time, so replacing it there is enough."""
    aioice_ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"] if use_ipv4 else []


def candidate_to_proto(c):
    """aioice Candidate -> cunicu.epdisc.Candidate (WIRE.md §7 mapping)."""
    family = 6 if ":" in c.host else 4
    proto = wire.Candidate(
        type=CANDIDATE_TYPES[c.type],
        network_type=f"{c.transport.upper()}{family}",
        foundation=c.foundation,
        component=c.component,
        priority=c.priority,
        address=c.host,
        port=c.port,
    )
    if c.type != "host" and c.related_address is not None:
        proto.related_address.address = c.related_address
        proto.related_address.port = c.related_port or 0
    if c.type == "relay":
        proto.relay_protocol = "UDP"
    return proto


def candidate_from_proto(aioice, proto):
    """cunicu.epdisc.Candidate -> aioice Candidate; None for what aioice cannot use (TCP)."""
    type_name = wire.epdisc_candidate_pb2.CandidateType.Name(proto.type)
    network = wire.epdisc_candidate_pb2.NetworkType.Name(proto.network_type)
    if type_name not in CANDIDATE_TYPES_BACK or network not in NETWORK_TYPES:
        raise ValueError(f"candidate with type {type_name} and network type {network}")
    transport, _ = NETWORK_TYPES[network]
    if transport != "udp":
        return None
    related = proto.related_address if proto.HasField("related_address") else None
    return aioice.Candidate(
        foundation=proto.foundation or "0",
        component=proto.component or 1,
        transport="udp",
        priority=proto.priority,
        host=proto.address,
        port=proto.port,
        type=CANDIDATE_TYPES_BACK[type_name],
        related_address=related.address if related else None,
        related_port=related.port if related else None,
    )


def describe(c) -> dict:
    return {"type": c.type, "address": c.host, "port": c.port, "priority": c.priority, "foundation": c.foundation}


class SessionPeer:
    def __init__(self, args, aioice) -> None:
        self.args = args
        self.aioice = aioice
        self.ours = wire.private_key(args.key)
        self.theirs = wire.public_key(args.peer)
        ours_raw, theirs_raw = bytes(self.ours.public_key), bytes(self.theirs)
        if ours_raw == theirs_raw:
            raise ValueError("the peer key is our own public key")
        # WIRE.md §2: Python compares bytes lexicographically as unsigned values = big-endian integers.
        self.controlling = ours_raw < theirs_raw
        self.role = "controlling" if self.controlling else "controlled"
        self.ufrag, self.pwd = random_letters(16), random_letters(32)
        self.conn = aioice.Connection(ice_controlling=self.controlling, components=1, use_ipv4=True, use_ipv6=False)
        # aioice 0.8: the credentials it uses for STUN short-term authentication are plain attributes.
        self.conn.local_username, self.conn.local_password = self.ufrag, self.pwd
        self.remote_creds = None
        self.have_remote_creds = asyncio.Event()
        self.have_remote_candidate = asyncio.Event()
        self.failure = None
        self.failed = asyncio.Event()
        self.sent = 0
        self.received = 0

    async def publish(self, publish, message) -> None:
        await publish(wire.seal(message, self.ours, self.theirs), timeout=5)
        self.sent += 1

    def credentials(self, need_creds: bool):
        return wire.Message(credentials=wire.epdisc_pb2.Credentials(ufrag=self.ufrag, pwd=self.pwd, need_creds=need_creds))

    def fail(self, reason: str) -> None:
        if self.failure is None:
            self.failure = reason
            self.failed.set()

    async def on_message(self, publish, message) -> None:
        if message.HasField("credentials"):
            creds = message.credentials
            remote = (creds.ufrag, creds.pwd)
            emit(type="credentials", ufrag=creds.ufrag, needCreds=creds.need_creds)
            if self.remote_creds is None:
                if len(creds.ufrag) < 4 or len(creds.pwd) < 22:
                    return self.fail(f"remote credentials too short for ICE: ufrag {len(creds.ufrag)}, pwd {len(creds.pwd)}")
                self.remote_creds = remote
                self.conn.remote_username, self.conn.remote_password = remote
                self.have_remote_creds.set()
            elif remote != self.remote_creds:
                # A restart of the remote agent: this peer makes one attempt only, so that is a failure here.
                return self.fail("the remote peer restarted its agent (new credentials)")
            if creds.need_creds:
                await self.publish(publish, self.credentials(False))
        elif message.HasField("candidate"):
            try:
                candidate = candidate_from_proto(self.aioice, message.candidate)
            except ValueError as exc:
                emit(type="error", message=f"remote candidate dropped: {exc}")
                return
            if candidate is None:
                return
            emit(type="candidate", side="remote", candidate=describe(candidate))
            await self.conn.add_remote_candidate(candidate)
            self.have_remote_candidate.set()
        else:
            emit(type="ignored", message=wire.message_to_json(message))

    async def read(self, stream, publish, subscribed: asyncio.Event) -> None:
        try:
            await self._read(stream, publish, subscribed)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a background task: report, never lose it
            self.fail(f"subscription: {exc!r}")

    async def _read(self, stream, publish, subscribed: asyncio.Event) -> None:
        async for envelope in stream:
            if not subscribed.is_set():
                if not wire.is_sync(envelope):
                    return self.fail("the first envelope of a subscription is not the empty sync envelope")
                subscribed.set()
                emit(type="subscribed", key=wire.b64(self.ours.public_key), role=self.role)
                continue
            try:
                message = wire.open_envelope(envelope, self.ours)
            except ValueError as exc:
                emit(type="error", message=str(exc))
                continue
            if envelope.sender != bytes(self.theirs):
                continue  # cunīcu subscribes per sender: others are not part of this session
            self.received += 1
            await self.on_message(publish, message)
        self.fail("the server ended the subscription")

    async def request_credentials(self, publish) -> None:
        # Bounded: at most one request per second, and the caller's deadline ends it.
        while not self.have_remote_creds.is_set():
            try:
                await self.publish(publish, self.credentials(True))
            except grpc.RpcError as exc:
                return self.fail(f"publishing credentials: {exc.code().name} {exc.details()}")
            try:
                await asyncio.wait_for(self.have_remote_creds.wait(), 1)
            except asyncio.TimeoutError:
                pass

    async def ice(self, publish) -> None:
        await self.have_remote_creds.wait()
        await self.conn.gather_candidates()
        local = self.conn.local_candidates
        if not local:
            return self.fail("aioice gathered no local candidates")
        for c in local:
            emit(type="candidate", side="local", candidate=describe(c))
            await self.publish(publish, wire.Message(candidate=candidate_to_proto(c)))
        # aioice's connect() gives up at once on an empty check list: wait for the first remote candidate.
        await self.have_remote_candidate.wait()
        await self.conn.connect()
        pair = self.conn._nominated.get(1)  # aioice 0.8 has no public accessor for the selected pair
        emit(
            type="connected",
            role=self.role,
            local=describe(pair.local_candidate) if pair else None,
            remote=describe(pair.remote_candidate) if pair else None,
        )

    async def linger(self, seconds: float) -> None:
        """Serve consent checks (and read whatever the peer sends over the path) for `seconds`."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                data = await asyncio.wait_for(self.conn.recv(), left)
            except asyncio.TimeoutError:
                break
            except ConnectionError as exc:
                emit(type="error", message=f"ICE connection lost: {exc}")
                return self.fail(f"ICE connection lost: {exc}")
            emit(type="datagram", size=len(data), prefix=data[:8].hex(), sha1=hashlib.sha1(data).hexdigest())
            # --echo: what cunīcu's data plane would do with a WireGuard that answers: the datagram goes back
            # unchanged over the selected pair (path probes too: this peer does not know them).
            if self.args.echo:
                await self.conn.send(data)

    async def run(self) -> int:
        async with grpc.aio.insecure_channel(self.args.server) as channel:
            publish = envelope_stub(channel, "Publish", wire.Empty)
            subscribe = channel.unary_stream(
                wire.SERVICE + "Subscribe", request_serializer=lambda m: m.SerializeToString(), response_deserializer=wire.Envelope.FromString
            )
            stream = subscribe(wire.SubscribeParams(key=bytes(self.ours.public_key)))
            subscribed = asyncio.Event()
            reader = asyncio.ensure_future(self.read(stream, publish, subscribed))
            tasks = [reader]
            try:
                await asyncio.wait_for(self.race(subscribed.wait()), self.args.timeout)
                started = time.monotonic()
                tasks.append(asyncio.ensure_future(self.request_credentials(publish)))
                await asyncio.wait_for(self.race(self.ice(publish)), max(0.1, self.args.timeout - (time.monotonic() - started)))
                await self.race(self.linger(self.args.linger))
            except asyncio.TimeoutError:
                emit(type="timeout", seconds=self.args.timeout, sent=self.sent, received=self.received)
                return 4
            except SessionFailed:
                emit(type="failed", reason=self.failure)
                return 5
            except grpc.RpcError as exc:
                emit(type="error", **rpc_error(exc))
                return 3
            finally:
                for task in tasks:
                    task.cancel()
                stream.cancel()
                await self.conn.close()
            if self.failure:
                emit(type="failed", reason=self.failure)
                return 5
            emit(type="closed", sent=self.sent, received=self.received)
            return 0

    async def race(self, coro):
        """Runs `coro` unless the session fails first."""
        work = asyncio.ensure_future(coro)
        failed = asyncio.ensure_future(self.failed.wait())
        try:
            done, _ = await asyncio.wait({work, failed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            failed.cancel()
            if not work.done():
                work.cancel()
        if work in done:
            return work.result()
        raise SessionFailed()


class SessionFailed(Exception):
    pass


def cmd_session(args) -> int:
    try:
        import aioice
        import aioice.ice
    except ImportError as exc:  # pragma: no cover
        sys.exit(f"python3-aioice is missing ({exc}): apt-get install -y python3-aioice")
    loopback_only(aioice.ice)
    try:
        peer = SessionPeer(args, aioice)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    emit(type="role", role=peer.role, ours=wire.b64(peer.ours.public_key), theirs=wire.b64(peer.theirs))
    return asyncio.run(peer.run())


# ---------------------------------------------------------------- stun


def cmd_stun(args) -> int:
    """aioice's own server-reflexive query (ice.server_reflexive_candidate) against a STUN server."""
    import aioice.ice
    from aioice.candidate import Candidate

    class Receiver:
        def data_received(self, data, component):
            pass

        def request_received(self, message, addr, protocol, raw):
            pass

    async def query() -> int:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(lambda: aioice.ice.StunProtocol(Receiver()), local_addr=(args.bind, 0))
        host, port = transport.get_extra_info("sockname")[:2]
        protocol.local_candidate = Candidate(foundation="1", component=1, transport="udp", priority=1, host=host, port=port, type="host")
        try:
            candidate = await asyncio.wait_for(aioice.ice.server_reflexive_candidate(protocol, (args.host, args.port)), args.timeout)
        except (asyncio.TimeoutError, aioice.stun.TransactionError) as exc:
            emit(type="error", error=f"no STUN answer: {exc!r}")
            return 4
        finally:
            await protocol.close()
        emit(type="srflx", address=candidate.host, port=candidate.port, localAddress=host, localPort=port, candidate=candidate.to_sdp())
        return 0

    return asyncio.run(query())


def main() -> int:
    parser = argparse.ArgumentParser(prog="peer.py", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("publish", help="seal and publish messages")
    p.add_argument("--server", required=True)
    p.add_argument("--key", required=True, help="our private key, base64")
    p.add_argument("--to", required=True, help="recipient public key, base64")
    p.add_argument("--json", required=True, action="append", help="a Message in the protobuf JSON mapping; repeatable")
    p.add_argument("--timeout", type=float, default=10)
    p.add_argument("--truncate-recipient", action="store_true", help="send a 31-byte recipient (server must refuse)")
    p.set_defaults(run=cmd_publish)

    p = sub.add_parser("subscribe", help="print messages sent to our key")
    p.add_argument("--server", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--timeout", type=float, default=30)
    p.add_argument("--raw-key", default=None, help="subscribe with these base64 bytes instead of our key")
    p.set_defaults(run=cmd_subscribe)

    p = sub.add_parser("buildinfo", help="call GetBuildInfo")
    p.add_argument("--server", required=True)
    p.add_argument("--timeout", type=float, default=10)
    p.set_defaults(run=cmd_buildinfo)

    p = sub.add_parser("session", help="cunīcu's session protocol over aioice")
    p.add_argument("--server", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--peer", required=True)
    p.add_argument("--timeout", type=float, default=30)
    p.add_argument("--linger", type=float, default=5, help="seconds to serve consent after connecting")
    p.add_argument("--echo", action="store_true", help="send every datagram received over the path back, unchanged")
    p.set_defaults(run=cmd_session)

    p = sub.add_parser("stun", help="ask a STUN server for our server-reflexive address (aioice's client)")
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--bind", default="127.0.0.1", help="local address of the UDP socket")
    p.add_argument("--timeout", type=float, default=10)
    p.set_defaults(run=cmd_stun)

    args = parser.parse_args()
    try:
        return args.run(args)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
