"""Verify COSE signatures independently of health_pass (Python's cryptography).

usage: /usr/bin/python3 test/sig_check.py DSC.der < lines
Each input line is  <message hex>|<signature hex> ; the signature in COSE form
(ES256: r || s, 64 bytes; PS256: RSASSA-PSS, SHA-256, salt 32) over the
message.  Prints "<good> <bad>".  Used by test/t/070 and 071.
"""
import sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, utils

pub = x509.load_der_x509_certificate(open(sys.argv[1], 'rb').read()).public_key()
good = bad = 0
for line in sys.stdin:
    if not line.strip():
        continue
    data, sig = (bytes.fromhex(x) for x in line.split('|'))
    try:
        if isinstance(pub, ec.EllipticCurvePublicKey):
            assert len(sig) == 64
            der = utils.encode_dss_signature(int.from_bytes(sig[:32], 'big'), int.from_bytes(sig[32:], 'big'))
            pub.verify(der, data, ec.ECDSA(hashes.SHA256()))
        else:
            pub.verify(sig, data, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
        good += 1
    except Exception:
        bad += 1
print(good, bad)
