/*
 * hp_issue.h
 *    The registry's side of a pass: signing keys (keys.c, with PEM files
 *    and PKCS#11 tokens behind them), issuing passes (issue.c, uvci.c) and
 *    revoking them (revoke.c).  Depends on verify, pass, codec, audit and
 *    common; nothing depends on it but the module entry.
 */
#ifndef HP_ISSUE_H
#define HP_ISSUE_H

#include "audit/hp_audit.h"
#include "verify/hp_verify.h"

/*
 * A signing key opened for one call: found by name in
 * health_pass.signing_key, the caller's grant checked, the private key
 * reachable (a PEM file under health_pass.key_directory, or a PKCS#11
 * object).  Errors name the stage "key" (docs/design/signing.md).
 */
typedef struct HpSigner HpSigner;

typedef struct HpSignerInfo
{
	int64		keyid;			/* health_pass.signing_key row (its id) */
	const char *name;
	int			alg;			/* HP_ALG_ES256 or HP_ALG_PS256 */
	const uint8 *kid;			/* as trust_add() derives it */
	size_t		kid_len;
	const uint8 *certificate;	/* the DSC, DER */
	size_t		certificate_len;
	char		country[3];		/* the DSC subject's C, "" when none */
	TimestampTz not_before;		/* the DSC's validity */
	TimestampTz not_after;
	int			key_usage;		/* HpKind bits the DSC allows (all when it says none) */
	bool		dsc_revoked;	/* the DSC's trust_list row has revoked_at set */
	TimestampTz dsc_revoked_at; /* its revoked_at, when dsc_revoked */
} HpSignerInfo;

/* keys.c */
extern HpSigner *hp_signer_open(const char *name);
extern const HpSignerInfo *hp_signer_info(const HpSigner *s);

/*
 * Sign tbs (the COSE Sig_structure, already encoded) with the key: sig gets
 * the COSE form of the signature (ES256: r || s, 64 bytes; PS256: the
 * modulus size), *sig_len its length; sig has room for HP_MAX_SIG bytes.
 * Raises with the stage "sign" on failure, without key material.
 */
#define HP_MAX_SIG 512
extern void hp_signer_sign(HpSigner *s, const uint8 *tbs, size_t tbs_len,
						   uint8 *sig, size_t *sig_len);
extern void hp_signer_close(HpSigner *s);
extern Oid	hp_signing_key_relid(void);
extern void hp_issue_init(void);	/* settings: key_directory, PKCS#11 */

#endif
