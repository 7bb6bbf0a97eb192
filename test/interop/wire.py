# An independent implementation of the cunīcu wire contract (WIRE.md §3-§4), used by peer.py and
# server.py. It shares no code with cunicu-ts: protobuf modules come from Debian's protoc run on
# proto/ (the test helper puts them on PYTHONPATH), crypto_box from libsodium via PyNaCl.
import base64
import json
import sys

try:
    import nacl.public
    import nacl.utils
except ImportError as exc:  # pragma: no cover - reported to the test as a missing apt package
    sys.exit(f"python3-nacl is missing ({exc}): apt-get install -y python3-nacl")

try:
    from google.protobuf import json_format
except ImportError as exc:  # pragma: no cover
    sys.exit(f"python3-protobuf is missing ({exc}): apt-get install -y python3-protobuf")

try:
    import common_pb2
    from signaling import signaling_pb2
    from feature import epdisc_candidate_pb2, epdisc_pb2  # noqa: F401 (Message's field types)
except ImportError as exc:  # pragma: no cover
    sys.exit(
        f"generated protobuf modules not found ({exc}): run `protoc --python_out=DIR -I proto proto/**/*.proto` "
        "(apt-get install -y protobuf-compiler) and put DIR on PYTHONPATH"
    )

Envelope = signaling_pb2.Envelope
Message = signaling_pb2.Message
SubscribeParams = signaling_pb2.SubscribeParams
Empty = common_pb2.Empty
BuildInfo = common_pb2.BuildInfo
Candidate = epdisc_candidate_pb2.Candidate

SERVICE = "/cunicu.signaling.Signaling/"
NONCE_LENGTH = 24
TAG_LENGTH = 16
KEY_LENGTH = 32


def emit(**event):
    """One NDJSON line on stdout, flushed (the test reads events line by line)."""
    sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def b64(data: bytes) -> str:
    return base64.b64encode(bytes(data)).decode("ascii")


def key_bytes(text: str, what: str) -> bytes:
    raw = base64.b64decode(text.strip(), validate=True)
    if len(raw) != KEY_LENGTH:
        raise ValueError(f"{what} decodes to {len(raw)} bytes, but a key is {KEY_LENGTH} bytes")
    return raw


def b64decode_any(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def private_key(text: str) -> nacl.public.PrivateKey:
    return nacl.public.PrivateKey(key_bytes(text, "private key"))


def public_key(text: str) -> nacl.public.PublicKey:
    return nacl.public.PublicKey(key_bytes(text, "public key"))


def seal(message, ours: nacl.public.PrivateKey, theirs: nacl.public.PublicKey) -> "Envelope":
    """WIRE.md §4: body = crypto_box_easy(serialized Message) = tag || ciphertext, nonce apart."""
    nonce = nacl.utils.random(NONCE_LENGTH)
    sealed = nacl.public.Box(ours, theirs).encrypt(message.SerializeToString(), nonce)
    # PyNaCl's EncryptedMessage is nonce || tag || ciphertext; .ciphertext drops the nonce only.
    assert sealed.nonce == nonce and len(sealed.ciphertext) >= TAG_LENGTH
    return Envelope(
        sender=bytes(ours.public_key),
        recipient=bytes(theirs),
        contents=signaling_pb2.EncryptedMessage(body=sealed.ciphertext, nonce=nonce),
    )


def open_envelope(envelope, ours: nacl.public.PrivateKey):
    """WIRE.md §4 opening rules; raises ValueError for an envelope that must be dropped."""
    if envelope.recipient != bytes(ours.public_key):
        raise ValueError("envelope is not addressed to us")
    if len(envelope.sender) != KEY_LENGTH:
        raise ValueError(f"sender is {len(envelope.sender)} bytes")
    if len(envelope.contents.nonce) != NONCE_LENGTH:
        raise ValueError(f"nonce is {len(envelope.contents.nonce)} bytes")
    if len(envelope.contents.body) < TAG_LENGTH:
        raise ValueError(f"body is {len(envelope.contents.body)} bytes")
    box = nacl.public.Box(ours, nacl.public.PublicKey(envelope.sender))
    try:
        plain = box.decrypt(envelope.contents.body, envelope.contents.nonce)
    except Exception as exc:  # nacl.exceptions.CryptoError
        raise ValueError(f"cannot open: {exc}") from exc
    message = Message()
    message.ParseFromString(plain)
    return message


def is_sync(envelope) -> bool:
    """The empty envelope a server sends first on every subscription (WIRE.md §5)."""
    return envelope.ByteSize() == 0


def message_from_json(text: str):
    return json_format.Parse(text, Message())


def message_to_json(message) -> dict:
    return json_format.MessageToDict(message)
