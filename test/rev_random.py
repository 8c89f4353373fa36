#!/usr/bin/env python3
"""Random signed passes for test/t/060_revocation.pl, with their revocation
hashes computed here, independently of the extension, by hashlib.

  rev_random.py SEED N OUTDIR

writes OUTDIR/dsc.txt (one DER DSC in hex a line: an ES256 and a PS256 key)
and OUTDIR/passes.tsv: i, HC1 text, alg, then the expected UCI,
COUNTRYCODEUCI and SIGNATURE hashes in hex (\\N when the pass has no ci, or
no iss).  Issuers vary (some passes have no iss), UVCIs are random (some with
non-ASCII letters, hashed as their UTF-8 bytes), some entries have no ci.
Test material only: the keys are made on the spot and thrown away.
"""
import hashlib, os, random, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen  # noqa: E402


def h16(b):
    return hashlib.sha256(b).digest()[:16].hex()


def main():
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
