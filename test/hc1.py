"""HC1 text encoding shared by the test tools: base45 (RFC 9285) of zlib data."""
import zlib

B45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


def b45(data):
    """Base45 of bytes."""
    out = []
    for i in range(0, len(data), 2):
        if i + 1 < len(data):
            v = data[i] << 8 | data[i + 1]
            out += [B45[v % 45], B45[v // 45 % 45], B45[v // 2025]]
        else:
            out += [B45[data[i] % 45], B45[data[i] // 45]]
    return "".join(out)


def hc1(cose, compress=True):
    """The HC1: string of COSE bytes (zlib-compressed unless told otherwise)."""
    return "HC1:" + b45(zlib.compress(cose, 9) if compress else cose)
