#!/usr/bin/env python3
"""Generate signed EU DCC test passes and document signer certificates.

  gen.py fixtures OUT.sql   deterministic-structure fixture set for the tests
  gen.py bench N OUT_DIR    N ES256 passes (passes.txt) and their DSC (dsc.hex)
  gen.py sample OUT.sql     a handful of passes and DSCs for the quick start

Needs python3-cryptography.  Everything here is test material: the keys
are made on the spot and thrown away.
"""
import base64, datetime, hashlib, struct, sys, zlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.x509.oid import NameOID, ObjectIdentifier

from hc1 import b45, hc1

EKU = {"test": "1.3.6.1.4.1.1847.2021.1.1", "vaccination": "1.3.6.1.4.1.1847.2021.1.2",
       "recovery": "1.3.6.1.4.1.1847.2021.1.3"}


class Tag:
    def __init__(self, n, v):
        self.n, self.v = n, v


class Raw:
    def __init__(self, b):
        self.b = b


def head(major, n):
    if n < 24:
        return bytes([major << 5 | n])
    for ai, fmt in ((24, ">B"), (25, ">H"), (26, ">I"), (27, ">Q")):
        if n < 1 << (8 * struct.calcsize(fmt)):
            return bytes([major << 5 | ai]) + struct.pack(fmt, n)
    raise ValueError(n)


def cbor(o):
    if isinstance(o, Raw):
        return o.b
    if isinstance(o, Tag):
        return head(6, o.n) + cbor(o.v)
    if o is None:
        return b"\xf6"
    if o is True:
        return b"\xf5"
    if o is False:
        return b"\xf4"
    if isinstance(o, int):
        return head(0, o) if o >= 0 else head(1, -1 - o)
    if isinstance(o, float):
        return b"\xfb" + struct.pack(">d", o)
    if isinstance(o, bytes):
        return head(2, len(o)) + o
    if isinstance(o, str):
        b = o.encode()
        return head(3, len(b)) + b
    if isinstance(o, (list, tuple)):
        return head(4, len(o)) + b"".join(cbor(x) for x in o)
    if isinstance(o, dict):
        return head(5, len(o)) + b"".join(cbor(k) + cbor(v) for k, v in o.items())
    raise TypeError(o)


def ts(s):
    return int(datetime.datetime.fromisoformat(s).replace(tzinfo=datetime.timezone.utc).timestamp())


def make_key(kind):
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "p384":
        return ec.generate_private_key(ec.SECP384R1())
    return rsa.generate_private_key(65537, int(kind[3:]))


def make_cert(key, country="XX", ekus=(), nb="2021-01-01", na="2031-01-01", cn="DSC"):
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, country),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    b = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(datetime.datetime.fromisoformat(nb))
         .not_valid_after(datetime.datetime.fromisoformat(na)))
    if ekus:
        b = b.add_extension(x509.ExtendedKeyUsage([ObjectIdentifier(EKU[e]) for e in ekus]), False)
    return b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def kid_of(der):
    return hashlib.sha256(der).digest()[:8]


def sign(key, prot_bytes, payload):
    tbs = cbor(["Signature1", prot_bytes, b"", payload])
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = utils.decode_dss_signature(key.sign(tbs, ec.ECDSA(hashes.SHA256())))
        n = (key.curve.key_size + 7) // 8
        return r.to_bytes(n, "big") + s.to_bytes(n, "big")
    return key.sign(tbs, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())


def dcc(kind="v", name="Musterfrau", i=0):
    base = {"ver": "1.3.0", "nam": {"fn": name, "fnt": name.upper(), "gn": "Erika", "gnt": "ERIKA"},
            "dob": "1964-08-12"}
    ci = "URN:UVCI:01:XX:%026X#%d" % (i, i % 10)
    if kind == "v":
        base["v"] = [{"tg": "840539006", "vp": "1119349007", "mp": "EU/1/20/1528", "ma": "ORG-100030215",
                      "dn": 2, "sd": 2, "dt": "2021-05-29", "co": "XX", "is": "Ministry of Health", "ci": ci}]
    elif kind == "t":
        base["t"] = [{"tg": "840539006", "tt": "LP6464-4", "sc": "2021-05-30T10:12:22Z", "tr": "260415000",
                      "tc": "Test centre", "co": "XX", "is": "Ministry of Health", "ci": ci}]
    else:
        base["r"] = [{"tg": "840539006", "fr": "2021-04-21", "co": "XX", "is": "Ministry of Health",
                      "df": "2021-05-01", "du": "2021-10-21", "ci": ci}]
    return base


def make_pass(key, kid, hcert=None, iat="2021-06-01", exp="2030-01-01", alg=None, prot=None,
              unprot=None, claims=None, tags=(18,), sig=None, compress=True, iss="XX"):
    if alg is None:
        alg = -7 if isinstance(key, ec.EllipticCurvePrivateKey) else -37
    if prot is None:
        prot = {1: alg, 4: kid} if kid is not None else {1: alg}
    prot_bytes = prot if isinstance(prot, bytes) else cbor(prot)
    if claims is None:
        claims = {1: iss, 4: ts(exp) if isinstance(exp, str) else exp,
                  6: ts(iat) if isinstance(iat, str) else iat, -260: {1: hcert or dcc()}}
    payload = claims if isinstance(claims, bytes) else cbor(claims)
    signature = sign(key, prot_bytes, payload) if sig is None else sig
    msg = cbor([prot_bytes, unprot or {}, payload, signature])
    for t in reversed(tags):
        msg = head(6, t) + msg
    return hc1(msg, compress), msg


def sql_str(s):
    return "'" + s.replace("'", "''") + "'"


def fixtures(out):
    keys = {k: make_key(t) for k, t in [("ec", "ec"), ("ecv", "ec"), ("old", "ec"), ("rsa", "rsa2048"),
                                         ("p384", "p384"), ("rsa1024", "rsa1024"), ("twin", "ec")]}
    certs = {"ec": make_cert(keys["ec"], "XX"),
             "ecv": make_cert(keys["ecv"], "YY", ekus=["vaccination"]),
             "old": make_cert(keys["old"], "ZZ", nb="2019-01-01", na="2020-12-31"),
             "rsa": make_cert(keys["rsa"], "XX"),
             "p384": make_cert(keys["p384"], "XX"),
             "rsa1024": make_cert(keys["rsa1024"], "XX"),
             "twin": make_cert(keys["twin"], "TW")}
    kid = {k: kid_of(v) for k, v in certs.items()}
    ec_k, kid_ec = keys["ec"], kid["ec"]
    p = {}
    p["ok_vacc"] = make_pass(ec_k, kid_ec, dcc("v"))
    p["ok_test"] = make_pass(ec_k, kid_ec, dcc("t", "Tester"))
    p["ok_recovery"] = make_pass(ec_k, kid_ec, dcc("r", "Recover"))
    p["ok_ps256"] = make_pass(keys["rsa"], kid["rsa"], dcc("v", "Rsa"))
    p["expired"] = make_pass(ec_k, kid_ec, exp="2021-07-01")
    p["not_yet"] = make_pass(ec_k, kid_ec, iat="2029-01-01")
    good = p["ok_vacc"][1]
    bad = bytearray(good)
    bad[-1] ^= 1
    p["bad_signature"] = (hc1(bytes(bad)), bytes(bad))
    p["unknown_key"] = make_pass(ec_k, b"\x01\x02\x03\x04\x05\x06\x07\x08")
    p["kid_unprotected"] = make_pass(ec_k, None, unprot={4: kid_ec})
    p["kid_wrong_protected"] = make_pass(ec_k, b"\x09" * 8, unprot={4: kid_ec})
    p["key_usage"] = make_pass(keys["ecv"], kid["ecv"], dcc("t", "Usage"))
    p["usage_ok"] = make_pass(keys["ecv"], kid["ecv"], dcc("v", "Usage"))
    p["key_not_valid"] = make_pass(keys["old"], kid["old"])
    p["alg_mismatch"] = make_pass(ec_k, kid_ec, alg=-37)
    p["alg_es384"] = make_pass(ec_k, kid_ec, alg=-35)
    p["alg_unprotected_only"] = make_pass(ec_k, None, prot={4: kid_ec}, unprot={1: -7})
    p["p384_key"] = make_pass(keys["p384"], kid["p384"], alg=-7)
    p["rsa1024_key"] = make_pass(keys["rsa1024"], kid["rsa1024"])
    p["zero_signature"] = make_pass(ec_k, kid_ec, sig=bytes(64))
    r, s = good[-64:-32], good[-32:]
    der = utils.encode_dss_signature(int.from_bytes(r, "big"), int.from_bytes(s, "big"))
    p["der_signature"] = make_pass(ec_k, kid_ec, sig=der)
    p["short_signature"] = make_pass(ec_k, kid_ec, sig=bytes(good[-64:-1]))
    n = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    p["signature_r_is_n"] = make_pass(ec_k, kid_ec, sig=n.to_bytes(32, "big") + bytes(s))
    # PSS with another salt length
    prot = cbor({1: -37, 4: kid["rsa"]})
    payload = cbor({1: "XX", 4: ts("2030-01-01"), 6: ts("2021-06-01"), -260: {1: dcc()}})
    tbs = cbor(["Signature1", prot, b"", payload])
    sig20 = keys["rsa"].sign(tbs, padding.PSS(padding.MGF1(hashes.SHA256()), 20), hashes.SHA256())
    p["pss_salt_20"] = make_pass(keys["rsa"], kid["rsa"], prot=prot, claims=payload, sig=sig20)
    # the same kid on two DSCs: signed by the second
    p["shared_kid"] = make_pass(keys["twin"], kid_ec)
    # real-world quirks
    h = dcc("v", "Float")
    h["v"][0]["dn"] = 2.0
    h["v"][0]["dt"] = Tag(1004, "2021-05-29")
    p["floats_and_tags"] = make_pass(ec_k, kid_ec, h, iat=float(ts("2021-06-01")) + 0.5,
                                     exp=Tag(1, float(ts("2030-01-01"))))
    h = dcc("t", "Tag0")
    h["t"][0]["sc"] = Tag(0, "2021-05-30T10:12:22Z")
    p["tag0_date"] = make_pass(ec_k, kid_ec, h)
    p["cwt_tag"] = make_pass(ec_k, kid_ec, tags=(61, 18))
    p["untagged"] = make_pass(ec_k, kid_ec, tags=())
    claims = {-260: {1: dcc()}, 6: ts("2021-06-01"), 1: "XX", 4: ts("2030-01-01")}
    p["claims_any_order"] = make_pass(ec_k, kid_ec, claims=claims)
    p["no_exp"] = make_pass(ec_k, kid_ec, claims={1: "XX", 6: ts("2021-06-01"), -260: {1: dcc()}})
    h = dcc("v")
    h["t"] = dcc("t")["t"]
    p["schema_two_kinds"] = make_pass(ec_k, kid_ec, h)
    h = dcc("v")
    del h["nam"]["fnt"]
    h["dob"] = "12.08.1964"
    p["schema_bad"] = make_pass(ec_k, kid_ec, h)

    # hostile structures: signed where a signature could hide the defect
    hs = {}
    hs["dup_protected_key"] = make_pass(ec_k, kid_ec, prot=Raw(head(5, 2) + cbor(1) + cbor(-7) + cbor(1) + cbor(-7)))[0]
    hs["dup_claim"] = make_pass(ec_k, kid_ec, claims=Raw(head(5, 3) + cbor(1) + cbor("XX") + cbor(1) + cbor("YY")
                                                         + cbor(-260) + cbor({1: dcc()})))[0]
    hs["dup_payload_key"] = make_pass(ec_k, kid_ec, Raw(head(5, 2) + cbor("ver") + cbor("1") + cbor("ver") + cbor("2")))[0]
    indef = b"\xbf" + cbor("ver") + cbor("1.3.0") + b"\xff"
    hs["indefinite_map"] = make_pass(ec_k, kid_ec, Raw(indef))[0]
    hs["indefinite_payload_bstr"] = hc1(head(6, 18) + b"\x84" + cbor(cbor({1: -7})) + b"\xa0" + b"\x5f\x41\x00\xff" + cbor(bytes(64)))
    msg = bytearray(good)
    hs["trailing_bytes"] = hc1(bytes(msg) + b"\x00")
    hs["length_past_end"] = hc1(bytes(msg[:-70]) + b"\x5a\xff\xff\xff\xf0")
    hs["truncated"] = hc1(bytes(msg[:len(msg) // 2]))
    deep = cbor("x")
    for _ in range(40):
        deep = b"\x81" + deep
    hs["deep_nesting"] = make_pass(ec_k, kid_ec, Raw(head(5, 1) + cbor("v") + deep))[0]
    hs["tag_chain"] = hc1(b"\xd8\x3d" * 10 + head(6, 18) + good[1:])
    hs["unknown_outer_tag"] = hc1(head(6, 99) + good)
    hs["huge_array_count"] = hc1(b"\x9b\x00\x00\x00\xff\xff\xff\xff\xff" + b"\x00" * 16)
    hs["huge_map_count"] = make_pass(ec_k, kid_ec, Raw(b"\xba\x7f\xff\xff\xff" + b"\x00" * 32))[0]
    hs["too_many_items"] = make_pass(ec_k, kid_ec, Raw(head(5, 1) + cbor("v") + head(4, 1000) + b"\x84\x80\x80\x80\x80" * 1000))[0]
    hs["zlib_bomb"] = "HC1:" + b45(zlib.compress(b"\x00" * 5_000_000, 9))
    hs["not_compressed"] = hc1(good, compress=False)
    hs["zlib_trailing"] = "HC1:" + b45(zlib.compress(good, 9) + b"\x00\x00")
    hs["zlib_truncated"] = "HC1:" + b45(zlib.compress(good, 9)[:-10])
    hs["not_an_array"] = hc1(cbor({1: 2}))
    hs["array_of_3"] = hc1(cbor([b"", {}, b""]))
    hs["protected_not_bstr"] = hc1(cbor([{1: -7}, {}, b"", b""]))
    hs["detached_payload"] = hc1(cbor([cbor({1: -7}), {}, None, bytes(64)]))
    hs["payload_not_map"] = make_pass(ec_k, kid_ec, claims=cbor([1, 2]))[0]
    hs["no_hcert"] = make_pass(ec_k, kid_ec, claims={1: "XX", 4: 1, 6: 1})[0]
    hs["hcert_no_key_1"] = make_pass(ec_k, kid_ec, claims={1: "XX", -260: {2: {}}})[0]
    hs["payload_bytes"] = make_pass(ec_k, kid_ec, {"ver": b"\x01"})[0]
    hs["payload_int_key"] = make_pass(ec_k, kid_ec, Raw(head(5, 1) + cbor(1) + cbor("x")))[0]
    hs["payload_bad_utf8"] = make_pass(ec_k, kid_ec, Raw(head(5, 1) + cbor("ver") + b"\x62\xc3\x28"))[0]
    hs["payload_nan"] = make_pass(ec_k, kid_ec, Raw(head(5, 1) + cbor("n") + b"\xf9\x7e\x00"))[0]
    hs["payload_undefined"] = make_pass(ec_k, kid_ec, Raw(head(5, 1) + cbor("n") + b"\xf7"))[0]
    hs["payload_unknown_tag"] = make_pass(ec_k, kid_ec, {"d": Tag(32, "http://x")})[0]
    hs["iat_text"] = make_pass(ec_k, kid_ec, claims={1: "XX", 6: "yesterday", -260: {1: dcc()}})[0]
    hs["iat_infinite"] = make_pass(ec_k, kid_ec, claims=Raw(head(5, 2) + cbor(6) + b"\xf9\x7c\x00" + cbor(-260) + cbor({1: dcc()})))[0]
    hs["reserved_ai"] = hc1(b"\x9c" + good[1:])
    hs["bad_base45_char"] = "HC1:" + b45(zlib.compress(good))[:-3] + "ab~"
    b = b45(zlib.compress(good))
    hs["bad_base45_length"] = "HC1:" + b + "A" * ((1 - len(b)) % 3)
    hs["base45_overflow"] = "HC1:GGW"
    hs["empty_after_prefix"] = "HC1:"
    hs["lower_case_prefix"] = "hc1:" + b45(zlib.compress(good))
    hs["other_prefix"] = "HC2:" + b45(zlib.compress(good))
    hs["too_long"] = "HC1:" + "0" * 20000

    with open(out, "w") as f:
        f.write("-- generated by test/gen.py fixtures; test material only, keys thrown away\n")
        f.write("CREATE TEMP TABLE fx_cert (name text PRIMARY KEY, der bytea);\n")
        f.write("CREATE TEMP TABLE fx_pass (name text PRIMARY KEY, txt text);\n")
        f.write("CREATE TEMP TABLE fx_hostile (name text PRIMARY KEY, txt text);\n")
        for k, v in certs.items():
            f.write("INSERT INTO fx_cert VALUES (%s, '\\x%s');\n" % (sql_str(k), v.hex()))
        for k, v in p.items():
            f.write("INSERT INTO fx_pass VALUES (%s, %s);\n" % (sql_str(k), sql_str(v[0])))
        for k, v in hs.items():
            f.write("INSERT INTO fx_hostile VALUES (%s, %s);\n" % (sql_str(k), sql_str(v)))


def bench(n, outdir):
    key = make_key("ec")
    der = make_cert(key, "XX")
    kid = kid_of(der)
    with open(outdir + "/dsc.hex", "w") as f:
        f.write(der.hex() + "\n")
    with open(outdir + "/passes.txt", "w") as f:
        for i in range(n):
            f.write(make_pass(key, kid, dcc("vtr"[i % 3], "Person%d" % i, i))[0] + "\n")


def sample(out):
    key, rkey = make_key("ec"), make_key("rsa2048")
    der, rder = make_cert(key, "XX", cn="Sample DSC EC"), make_cert(rkey, "XX", cn="Sample DSC RSA")
    rows = [make_pass(key, kid_of(der), dcc("vtr"[i % 3], "Sample%d" % i, i))[0] for i in range(9)]
    rows.append(make_pass(rkey, kid_of(rder), dcc("v", "RsaSample", 9))[0])
    rows.append(make_pass(key, kid_of(der), dcc("v", "Expired", 10), exp="2021-12-31")[0])
    with open(out, "w") as f:
        f.write("SELECT health_pass.trust_add('\\x%s');\n" % der.hex())
        f.write("SELECT health_pass.trust_add('\\x%s');\n" % rder.hex())
        f.write("CREATE TABLE IF NOT EXISTS public.passes (id serial PRIMARY KEY, pass health_pass.pass UNIQUE);\n")
        for r in rows:
            f.write("INSERT INTO public.passes (pass) VALUES (%s);\n" % sql_str(r))


if __name__ == "__main__":
    if sys.argv[1] == "fixtures":
        fixtures(sys.argv[2])
    elif sys.argv[1] == "bench":
        bench(int(sys.argv[2]), sys.argv[3])
    elif sys.argv[1] == "sample":
        sample(sys.argv[2])
    else:
        sys.exit(__doc__)
