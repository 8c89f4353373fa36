/*
 * hp_signing.h
 *    Private to the key store (keys.c, pkcs11.c, settings.c): the settings,
 *    the SQLSTATEs of signing failures, the key-directory file checks and
 *    the PKCS#11 side.  issue() uses hp_issue.h only.
 *    docs/design/signing.md explains the choices.
 */
#ifndef HP_SIGNING_H
#define HP_SIGNING_H

#include "issue/hp_issue.h"

/*
 * SQLSTATEs of the key store (class YH, implementation-defined).  Every
 * message starts with its stage, "key: " or "sign: ", and never holds key
 * material, a PIN or a file's content.
 */
#define ERRCODE_HP_KEY_UNSAFE      MAKE_SQLSTATE('Y','H','K','0','1')	/* file or directory others may read or replace */
#define ERRCODE_HP_KEY_MISMATCH    MAKE_SQLSTATE('Y','H','K','0','2')	/* private key is not the certificate's */
#define ERRCODE_HP_KEY_UNAVAILABLE MAKE_SQLSTATE('Y','H','K','0','3')	/* cannot load the key: module, token, login, object, PEM */
#define ERRCODE_HP_PIN_REFUSED     MAKE_SQLSTATE('Y','H','K','0','4')	/* a PIN the token refused before: not offered again */
#define ERRCODE_HP_SIGN_FAILED     MAKE_SQLSTATE('Y','H','S','0','1')	/* the signing operation failed */

/* settings.c */
extern char *hp_key_directory;
extern char *hp_pkcs11_module;
extern char *hp_pkcs11_pin_file;

/* keys.c: open NAME under key_directory after the safety checks; fd */
#define HP_KEY_LABEL_MAX 64		/* bytes of a key name a message echoes */
extern const char *hp_key_label(const char *name);
extern int	hp_key_file_open(const char *keyname, const char *name,
							 const char *what, size_t max_size);
extern bool hp_read_fd(int fd, char *buf, size_t bufsize, size_t *len);

/* pkcs11.c */
typedef struct HpP11Key HpP11Key;

extern void hp_p11_check_uri(const char *uri);
extern HpP11Key *hp_p11_open(const char *keyname, const char *uri, int alg);
extern const char *hp_p11_rv_name(unsigned long rv);
extern void hp_p11_sign(HpP11Key *k, const char *keyname, int alg,
						const uint8 *msg, size_t msg_len, const uint8 *digest,
						uint8 *sig, size_t *sig_len);

/*
 * pinmark.c: wrong-PIN marks in shared memory, keyed by a SHA-256 of the
 * PIN's source (module, token, PIN file); see the file's header for the
 * lock rule
 */
#define HP_PIN_KEY_LEN 32
extern void hp_pin_marks_install(void);
extern bool hp_pin_marks_shared(void);
extern void hp_pin_claim(const uint8 *key, const char *keyname);
extern void hp_pin_settle(const uint8 *key, bool pin_error, unsigned long rv);

#endif
