#!/usr/bin/env python3
"""Random signed passes for test/t/060_revocation.pl, with their revocation
hashes computed here, independently of the extension, by hashlib.

  rev_random.py SEED N OUTDIR
  rev_random.py collide SEED OUTDIR

writes OUTDIR/dsc.txt (one DER DSC in hex a line: an ES256 and a PS256 key)
and OUTDIR/passes.tsv: i, HC1 text, alg, then the expected UCI,
COUNTRYCODEUCI and SIGNATURE hashes in hex (\\N when the pass has no ci, or
no iss).  Issuers vary (some passes have no iss), UVCIs are random (some with
non-ASCII letters, hashed as their UTF-8 bytes), some entries have no ci.

"collide" finds a pass whose UCI hash and another 16-byte value have the
same 32-bit code in a PostgreSQL hash index (hash_bytes, the lookup3 of
src/common/hashfn.c, reimplemented below), by a birthday search over 2^17
UVCIs, and writes OUTDIR/collide.txt: the pass, its DSC (hex), its UCI hash
and the colliding value (hex).

Test material only: the keys are made on the spot and thrown away.
"""
import hashlib, os, random, struct, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen  # noqa: E402


def h16(b):
    return hashlib.sha256(b).digest()[:16].hex()


# PostgreSQL's hash_bytes (src/common/hashfn.c), little-endian: the code a
# hash index keeps of a bytea key (hashvarlena)
M = 0xffffffff
def rot(x, k): return ((x << k) | (x >> (32 - k))) & M
def mix(a, b, c):
    a = (a - c) & M; a ^= rot(c, 4); c = (c + b) & M
    b = (b - a) & M; b ^= rot(a, 6); a = (a + c) & M
    c = (c - b) & M; c ^= rot(b, 8); b = (b + a) & M
    a = (a - c) & M; a ^= rot(c, 16); c = (c + b) & M
    b = (b - a) & M; b ^= rot(a, 19); a = (a + c) & M
    c = (c - b) & M; c ^= rot(b, 4); b = (b + a) & M
    return a, b, c
def final(a, b, c):
    c ^= b; c = (c - rot(b, 14)) & M
    a ^= c; a = (a - rot(c, 11)) & M
    b ^= a; b = (b - rot(a, 25)) & M
    c ^= b; c = (c - rot(b, 16)) & M
    a ^= c; a = (a - rot(c, 4)) & M
    b ^= a; b = (b - rot(a, 14)) & M
    c ^= b; c = (c - rot(b, 24)) & M
    return a, b, c
def hash_bytes(k):
    n = len(k)
    a = b = c = (0x9e3779b9 + n + 3923095) & M
    while n >= 12:
        x, y, z = struct.unpack_from("<III", k, len(k) - n)
        a = (a + x) & M; b = (b + y) & M; c = (c + z) & M
        a, b, c = mix(a, b, c); n -= 12
    t = k[len(k) - n:]
    # little-endian tail (PG hashfn.c)
    if n >= 9: c = (c + (int.from_bytes(t[8:n], "little") << 8)) & M
    if n >= 5: b = (b + int.from_bytes(t[4:min(n, 8)], "little")) & M
    if n >= 1: a = (a + int.from_bytes(t[0:min(n, 4)], "little")) & M
    a, b, c = final(a, b, c)
    return c
def signed(x): return x - (1 << 32) if x & 0x80000000 else x


def collide(seed, out):
    rnd = random.Random(seed)
    codes = {}
    for i in range(1 << 17):
        uvci = "URN:UVCI:01:XX:COLLIDE%08X#%d" % (i, i % 10)
        codes[hash_bytes(hashlib.sha256(uvci.encode()).digest()[:16])] = uvci
    while True:
        e = bytes(rnd.getrandbits(8) for _ in range(16))
        uvci = codes.get(hash_bytes(e))
        if uvci is not None and hashlib.sha256(uvci.encode()).digest()[:16] != e:
            break
    key = gen.make_key("ec")
    der = gen.make_cert(key, "XX")
    hc = gen.dcc("v", "Collide", 0)
    hc["v"][0]["ci"] = uvci
    txt, _ = gen.make_pass(key, gen.kid_of(der), hc)
    with open(os.path.join(out, "collide.txt"), "w") as f:
        f.write("\n".join([txt, der.hex(), hashlib.sha256(uvci.encode()).digest()[:16].hex(), e.hex()]) + "\n")


def main():
    if sys.argv[1] == "collide":
        return collide(int(sys.argv[2]), sys.argv[3])
    seed, n, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    rnd = random.Random(seed)
    keys = {"ES256": gen.make_key("ec"), "PS256": gen.make_key("rsa2048")}
    certs = {a: gen.make_cert(k, "XX") for a, k in keys.items()}
    with open(os.path.join(out, "dsc.txt"), "w") as f:
        for der in certs.values():
            f.write(der.hex() + "\n")
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ/"
    with open(os.path.join(out, "passes.tsv"), "w", encoding="utf-8") as f:
        for i in range(n):
            alg = rnd.choice(["ES256", "ES256", "PS256"])
            kind = rnd.choice("vtr")
            iss = rnd.choice(["DE", "FR", "LT", "XX", None])
            hc = gen.dcc(kind, "Person%d" % i, i)
            entry = hc[kind][0]
            body = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(10, 40)))
            if rnd.random() < 0.15:
                body += rnd.choice(["Ü", "é", "Ω"])
            uvci = "URN:UVCI:01:%s:%s#%s" % (iss or "XX", body, rnd.choice(alphabet[:36]))
            if rnd.random() < 0.1:
                del entry["ci"]
                uvci = None
            else:
                entry["ci"] = uvci
            claims = {4: gen.ts("2030-01-01"), 6: gen.ts("2021-06-01"), -260: {1: hc}}
            if iss:
                claims[1] = iss
            txt, msg = gen.make_pass(keys[alg], gen.kid_of(certs[alg]), claims=claims)
            sig = msg[-64:] if alg == "ES256" else msg[-256:]
            uci = h16(uvci.encode("utf-8")) if uvci else "\\N"
            cc = h16((iss + uvci).encode("utf-8")) if uvci and iss else "\\N"
            sh = h16(sig[:32] if alg == "ES256" else sig)
            f.write("\t".join([str(i), txt, alg, uci, cc, sh]) + "\n")


if __name__ == "__main__":
    main()
