#!/usr/bin/python3
"""An independent check of the passes health_pass.issue() signs.

  issue_check.py gen SEED N        N random valid DCC payloads, one JSON a line
  issue_check.py verify FILE DER.. each line of FILE, {"payload", "pass",
                                   "iat", "exp"}, checked against the DSCs

verify decodes every pass with its own base45 and Python's zlib, cbor2 and
cryptography (Debian packages; run with /usr/bin/python3), nothing of
health_pass or of test/gen.py: HC1: prefix, COSE_Sign1 tag 18, protected
header exactly {1: alg, 4: kid} with kid = SHA-256(DSC)[:8], empty
unprotected header, CWT claims exactly {1: iss, 4: exp, 6: iat, -260: {1:
payload}} with iss = the DSC's country, the payload equal to the one given,
and the signature over ["Signature1", protected, h'', payload] (ES256: r||s
of 64 bytes; PS256: RSASSA-PSS, SHA-256, MGF1 SHA-256, salt 32).  Ends
"issue_check: N passed, M failed".
"""
import hashlib
import json
import random
import sys
import zlib

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.x509.oid import NameOID

B45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
LUHN = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/:"


def b45decode(s):
    out = bytearray()
    for i in range(0, len(s), 3):
        chunk = [B45.index(c) for c in s[i:i + 3]]
        v = sum(c * 45 ** k for k, c in enumerate(chunk))
        out += v.to_bytes(2 if len(chunk) == 3 else 1, "big")
    return bytes(out)


def luhn38(s):
    factor, total, n = 2, 0, len(LUHN)
    for ch in reversed(s):
        a = factor * LUHN.index(ch)
        factor = 1 if factor == 2 else 2
        total += a // n + a % n
    return LUHN[(n - total % n) % n]


def rand_text(rng, alphabet, lo, hi):
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(lo, hi)))


def payload(rng, i):
    up = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    fn = rand_text(rng, "abcdefghijklmnopqrstuvwxyzéèüßøæ -'ĄŻ", 1, 30)
    gn = rand_text(rng, "abcdefghijklmnopqrstuvwxyzäöåñ", 1, 20)
    nam = {"fn": fn, "fnt": rand_text(rng, up + "<", 1, 30), "gn": gn,
           "gnt": rand_text(rng, up, 1, 20)}
    if rng.random() < 0.2:
        del nam["gn"], nam["gnt"]
    co = rng.choice(["FR", "DE", "IT", "SE", "AT", "BE"])
    opaque = rand_text(rng, "0123456789ABCDEFGHJKMNPQRSTVWXYZ", 10, 26)
    base = "URN:UVCI:01:%s:%s/%s" % (co, rand_text(rng, up, 2, 5), opaque)
    ci = base + "#" + luhn38(base)
    dob = rng.choice(["", "19%02d" % rng.randint(0, 99), "20%02d-%02d" % (rng.randint(0, 20), rng.randint(1, 12)),
                      "19%02d-%02d-%02d" % (rng.randint(0, 99), rng.randint(1, 12), rng.randint(1, 28))])
    day = "2021-%02d-%02d" % (rng.randint(1, 12), rng.randint(1, 28))
    kind = rng.choice("vtr")
    if kind == "v":
        e = {"tg": "840539006", "vp": "1119349007", "mp": "EU/1/20/1528", "ma": "ORG-100030215",
             "dn": rng.randint(1, 9), "sd": rng.randint(1, 9), "dt": day}
    elif kind == "t":
        e = {"tg": "840539006", "tt": "LP6464-4", "sc": day + "T%02d:%02d:%02dZ" % (rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59)),
             "tr": "260415000", "tc": rand_text(rng, up + " ", 1, 40)}
    else:
        e = {"tg": "840539006", "fr": day, "df": day, "du": "2022-01-01"}
    e.update({"co": co, "is": rand_text(rng, "Ministry of Health abc", 1, 60), "ci": ci})
    d = {"ver": "1.3.0", "nam": nam, "dob": dob, kind: [e]}
    if rng.random() < 0.5:   # extra members the encoder must carry: floats, nulls, nesting
        d["x"] = {"f": rng.choice([0.1, -2.5, 1e-7, 5.960464477539063e-08, 65504.5, 1.5, 123456.789]),
                  "n": None, "b": [True, False], "i": rng.randint(-2**63, 2**63 - 1),
                  "deep": {"a": [{"b": [rng.randint(-100, 100)]}]}, "s": "ü\u2028\"\\"}
    return d


def check(line, certs):
    rec = json.loads(line)
    text = rec["pass"]
    assert text.startswith("HC1:"), "no HC1: prefix"
    cose = zlib.decompress(b45decode(text[4:]))
    msg = cbor2.loads(cose)
    assert isinstance(msg, cbor2.CBORTag) and msg.tag == 18, "not COSE_Sign1 tag 18"
    prot_b, unprot, payload_b, sig = msg.value
    assert unprot == {}, "unprotected header not empty"
    prot = cbor2.loads(prot_b)
    assert set(prot) == {1, 4}, "protected header keys %r" % (sorted(prot),)
    kid = prot[4]
    cert = certs.get(bytes(kid))
    assert cert is not None, "kid %s names none of the DSCs" % bytes(kid).hex()
    claims = cbor2.loads(payload_b)
    assert set(claims) == {1, 4, 6, -260}, "claims %r" % (sorted(claims),)
    country = cert.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value
    assert claims[1] == country, "iss %r, DSC country %r" % (claims[1], country)
    assert claims[6] == rec["iat"] and claims[4] == rec["exp"], "iat/exp %r/%r" % (claims[6], claims[4])
    assert set(claims[-260]) == {1}, "hcert keys"
    assert claims[-260][1] == rec["payload"], "payload differs"
    tbs = cbor2.dumps(["Signature1", prot_b, b"", payload_b])
    pub = cert.public_key()
    if isinstance(pub, ec.EllipticCurvePublicKey):
        assert prot[1] == -7 and len(sig) == 64, "ES256: alg %r, signature %d bytes" % (prot[1], len(sig))
        der = utils.encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
        pub.verify(der, tbs, ec.ECDSA(hashes.SHA256()))
        return "ES256"
    assert isinstance(pub, rsa.RSAPublicKey) and prot[1] == -37, "PS256: alg %r" % (prot[1],)
    pub.verify(sig, tbs, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
    return "PS256"


def main():
    if sys.argv[1] == "gen":
        rng = random.Random(int(sys.argv[2]))
        for i in range(int(sys.argv[3])):
            print(json.dumps(payload(rng, i), ensure_ascii=False))
        return 0
    certs = {}
    for path in sys.argv[3:]:
        der = open(path, "rb").read()
        certs[hashlib.sha256(der).digest()[:8]] = x509.load_der_x509_certificate(der)
    passed = failed = 0
    algs = {}
    for n, line in enumerate(open(sys.argv[2], encoding="utf-8"), 1):
        try:
            alg = check(line, certs)
            algs[alg] = algs.get(alg, 0) + 1
            passed += 1
        except Exception as e:  # report every failure, go on
            failed += 1
            print("line %d: %s: %s" % (n, type(e).__name__, e))
    print("verified: %s" % ", ".join("%s %d" % kv for kv in sorted(algs.items())))
    print("issue_check: %d passed, %d failed" % (passed, failed))
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
