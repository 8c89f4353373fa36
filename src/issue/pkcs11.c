/*
 * pkcs11.c
 *    Signing keys in a PKCS#11 token: key_ref is a pkcs11: URI (RFC 7512)
 *    naming the token and the private key object; the module and the PIN
 *    come from the superuser-only settings health_pass.pkcs11_module and
 *    health_pass.pkcs11_pin_file (a file under key_directory), never from
 *    the URI: one carrying pin-value, pin-source, module-name or module-path
 *    is refused.
 *
 * Where the session lives (docs/design/signing.md): in the backend that
 * signs.  The module is loaded (dlopen) and initialized (C_Initialize) the
 * first time a backend uses a pkcs11: key, never in the postmaster, so no
 * process inherits a PKCS#11 state through fork; a process whose pid is not
 * the one that initialized starts afresh.  One read-only session per token,
 * logged in once (C_Login, the PIN read from its file into a stack buffer
 * that is wiped right after); objects are looked up once and kept by URI.
 * At backend exit: C_Logout, C_CloseSession, C_Finalize.  A session or
 * object error drops the token's session and objects, so the next call
 * starts afresh; a wrong PIN is not tried again, by any backend, until
 * the PIN file changes (a token locks its PIN after a few failures: a mark
 * in shared memory, pinmark.c).
 *
 * Signing: CKM_ECDSA over the SHA-256 digest (the token returns r || s,
 * the COSE form); CKM_SHA256_RSA_PKCS_PSS over the message (the token
 * hashes it) with SHA-256, MGF1 SHA-256 and a 32-byte salt, or, on a token
 * that does not offer that mechanism (CKR_MECHANISM_INVALID,
 * CKR_MECHANISM_PARAM_INVALID or CKR_FUNCTION_NOT_SUPPORTED at C_SignInit),
 * CKM_RSA_PKCS_PSS with the same parameters over the digest:
 * the same signature, remembered per key.
 */
#include "postgres.h"

#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include "miscadmin.h"
#include "storage/ipc.h"
#include "utils/memutils.h"

#include "common/hp_common.h"
#include "issue/hp_signing.h"

/* after every PostgreSQL header: the GNU names define no macros */
#define CRYPTOKI_GNU 1
#include <p11-kit/pkcs11.h>

#define P11_MAX_TOKENS 8
#define P11_PIN_MAX 256
#define P11_REINIT_TRIES 8

/* A parsed pkcs11: URI: what identifies the token and the key object */
typedef struct P11Uri
{
	char	   *token;
	char	   *manufacturer;
	char	   *serial;
	char	   *model;
	char	   *object;
	uint8	   *id;
	size_t		id_len;
	bool		has_slot_id;
	unsigned long slot_id;
} P11Uri;

/* One token's session in this backend */
typedef struct P11Token
{
	bool		used;
	ck_slot_id_t slot;
	ck_session_handle_t session;
	bool		logged_in;
} P11Token;

/*
 * A key object, found once by URI.  Never freed (a signer may still point
 * to it): a key whose session is gone has token NULL and is found afresh.
 */
struct HpP11Key
{
	HpP11Key   *next;
	char	   *uri;
	int			generation;		/* of the module state it was found in */
	P11Token   *token;
	ck_object_handle_t object;
	int			alg;
	bool		pss_over_digest;	/* the token has no CKM_SHA256_RSA_PKCS_PSS */
};

static struct
{
	void	   *dl;
	struct ck_function_list *f;
	char	   *path;			/* the module loaded (health_pass.pkcs11_module) */
	pid_t		pid;			/* the process that called C_Initialize */
	int			generation;
	bool		exit_hook;
	P11Token	tokens[P11_MAX_TOKENS];
	HpP11Key   *keys;
	/*
	 * A login that failed with a PIN error, when the marks are not shared
	 * (not preloaded; pinmark.c): not retried by this backend with the same
	 * PIN source
	 */
	bool		pin_failed;
	uint8		pin_key[HP_PIN_KEY_LEN];
	ck_rv_t		pin_rv;
} p11;

/* ------------------------------------------------------------------ */
/* Return values                                                       */
/* ------------------------------------------------------------------ */

static const char *
rv_name(ck_rv_t rv)
{
	static char buf[32];

	switch (rv)
	{
		case CKR_OK: return "CKR_OK";
		case CKR_HOST_MEMORY: return "CKR_HOST_MEMORY";
		case CKR_SLOT_ID_INVALID: return "CKR_SLOT_ID_INVALID";
		case CKR_GENERAL_ERROR: return "CKR_GENERAL_ERROR";
		case CKR_FUNCTION_FAILED: return "CKR_FUNCTION_FAILED";
		case CKR_ARGUMENTS_BAD: return "CKR_ARGUMENTS_BAD";
		case CKR_DEVICE_ERROR: return "CKR_DEVICE_ERROR";
		case CKR_DEVICE_MEMORY: return "CKR_DEVICE_MEMORY";
		case CKR_DEVICE_REMOVED: return "CKR_DEVICE_REMOVED";
		case CKR_KEY_HANDLE_INVALID: return "CKR_KEY_HANDLE_INVALID";
		case CKR_KEY_TYPE_INCONSISTENT: return "CKR_KEY_TYPE_INCONSISTENT";
		case CKR_KEY_FUNCTION_NOT_PERMITTED: return "CKR_KEY_FUNCTION_NOT_PERMITTED";
		case CKR_MECHANISM_INVALID: return "CKR_MECHANISM_INVALID";
		case CKR_MECHANISM_PARAM_INVALID: return "CKR_MECHANISM_PARAM_INVALID";
		case CKR_OBJECT_HANDLE_INVALID: return "CKR_OBJECT_HANDLE_INVALID";
		case CKR_OPERATION_ACTIVE: return "CKR_OPERATION_ACTIVE";
		case CKR_PIN_INCORRECT: return "CKR_PIN_INCORRECT";
		case CKR_PIN_INVALID: return "CKR_PIN_INVALID";
		case CKR_PIN_LEN_RANGE: return "CKR_PIN_LEN_RANGE";
		case CKR_PIN_EXPIRED: return "CKR_PIN_EXPIRED";
		case CKR_PIN_LOCKED: return "CKR_PIN_LOCKED";
		case CKR_SESSION_CLOSED: return "CKR_SESSION_CLOSED";
		case CKR_SESSION_COUNT: return "CKR_SESSION_COUNT";
		case CKR_SESSION_HANDLE_INVALID: return "CKR_SESSION_HANDLE_INVALID";
		case CKR_TOKEN_NOT_PRESENT: return "CKR_TOKEN_NOT_PRESENT";
		case CKR_TOKEN_NOT_RECOGNIZED: return "CKR_TOKEN_NOT_RECOGNIZED";
		case CKR_USER_ALREADY_LOGGED_IN: return "CKR_USER_ALREADY_LOGGED_IN";
		case CKR_USER_NOT_LOGGED_IN: return "CKR_USER_NOT_LOGGED_IN";
		case CKR_USER_PIN_NOT_INITIALIZED: return "CKR_USER_PIN_NOT_INITIALIZED";
		case CKR_USER_TYPE_INVALID: return "CKR_USER_TYPE_INVALID";
		case CKR_BUFFER_TOO_SMALL: return "CKR_BUFFER_TOO_SMALL";
		case CKR_CRYPTOKI_NOT_INITIALIZED: return "CKR_CRYPTOKI_NOT_INITIALIZED";
		case CKR_CRYPTOKI_ALREADY_INITIALIZED: return "CKR_CRYPTOKI_ALREADY_INITIALIZED";
		case CKR_FUNCTION_NOT_SUPPORTED: return "CKR_FUNCTION_NOT_SUPPORTED";
		case CKR_DATA_LEN_RANGE: return "CKR_DATA_LEN_RANGE";
		default:
			snprintf(buf, sizeof(buf), "CKR 0x%lx", (unsigned long) rv);
			return buf;
	}
}

/* A return value's name, for messages of other files (pinmark.c) */
const char *
hp_p11_rv_name(unsigned long rv)
{
	return rv_name((ck_rv_t) rv);
}

/* ------------------------------------------------------------------ */
/* URIs                                                                */
/* ------------------------------------------------------------------ */

/* Percent-decode s[0..n) into a palloc'd buffer; false when malformed */
static bool
pct_decode(const char *s, size_t n, char **out, size_t *out_len)
{
	char	   *d = palloc(n + 1);
	size_t		o = 0;

	for (size_t i = 0; i < n; i++)
	{
		if (s[i] == '%')
		{
			int			v = 0;

			if (i + 2 >= n)
			{
				pfree(d);
				return false;
			}
			for (int k = 1; k <= 2; k++)
			{
				char		c = s[i + k];

				v <<= 4;
				if (c >= '0' && c <= '9')
					v |= c - '0';
				else if (c >= 'a' && c <= 'f')
					v |= c - 'a' + 10;
				else if (c >= 'A' && c <= 'F')
					v |= c - 'A' + 10;
				else
				{
					pfree(d);
					return false;
				}
			}
			d[o++] = (char) v;
			i += 2;
		}
		else
			d[o++] = s[i];
	}
	d[o] = '\0';
	*out = d;
	*out_len = o;
	return true;
}

static void
uri_error(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("key: invalid pkcs11: key_ref: %s", what)));
}

/*
 * Parse a pkcs11: URI.  Raises for: a query attribute that would carry the
 * PIN or the module (pin-value, pin-source, module-name, module-path), any
 * other query attribute, an unknown or repeated path attribute, type other
 * than private, bad percent-encoding, no object and no id.  Messages never
 * repeat a value.
 */
static void
parse_uri(const char *uri, P11Uri *u)
{
	const char *p;
	const char *q;
	size_t		plen;
	bool		seen_type = false;

	memset(u, 0, sizeof(*u));
	if (strncmp(uri, "pkcs11:", 7) != 0)
		uri_error("it does not start with pkcs11:");
	p = uri + 7;
	q = strchr(p, '?');
	plen = q ? (size_t) (q - p) : strlen(p);
	if (q != NULL)
	{
		/* every query attribute is refused; name the dangerous ones */
		const char *a = q + 1;

		if (strstr(a, "pin-value") || strstr(a, "pin-source"))
			uri_error("a PIN (pin-value, pin-source) is never taken from the URI: use health_pass.pkcs11_pin_file");
		if (strstr(a, "module-path") || strstr(a, "module-name"))
			uri_error("the module (module-path, module-name) is never taken from the URI: use health_pass.pkcs11_module");
		uri_error("query attributes are not accepted");
	}
	while (plen > 0)
	{
		const char *e = memchr(p, ';', plen);
		size_t		n = e ? (size_t) (e - p) : plen;
		const char *eq = memchr(p, '=', n);
		size_t		nlen;
		char	   *val;
		size_t		vlen;
		char	  **slot = NULL;

		if (n == 0)
			uri_error("empty attribute");
		if (eq == NULL)
			uri_error("an attribute without a value");
		nlen = eq - p;
		if (!pct_decode(eq + 1, n - nlen - 1, &val, &vlen))
			uri_error("bad percent-encoding");
#define ATTR(s) (nlen == strlen(s) && strncmp(p, s, nlen) == 0)
		if (ATTR("token"))
			slot = &u->token;
		else if (ATTR("manufacturer"))
			slot = &u->manufacturer;
		else if (ATTR("serial"))
			slot = &u->serial;
		else if (ATTR("model"))
			slot = &u->model;
		else if (ATTR("object"))
			slot = &u->object;
		else if (ATTR("id"))
		{
			if (u->id != NULL)
				uri_error("attribute id repeated");
			u->id = (uint8 *) val;
			u->id_len = vlen;
		}
		else if (ATTR("type"))
		{
			if (seen_type)
				uri_error("attribute type repeated");
			seen_type = true;
			if (vlen != strlen("private") || memcmp(val, "private", vlen) != 0)
				uri_error("type must be private (the private key object)");
		}
		else if (ATTR("slot-id"))
		{
			char	   *end;

			if (u->has_slot_id)
				uri_error("attribute slot-id repeated");
			errno = 0;
			u->slot_id = strtoul(val, &end, 10);
			if (vlen == 0 || strspn(val, "0123456789") != vlen || *end != '\0' || errno != 0)
				uri_error("slot-id must be a decimal number");
			u->has_slot_id = true;
		}
		else if (ATTR("pin-value") || ATTR("pin-source"))
			uri_error("a PIN (pin-value, pin-source) is never taken from the URI: use health_pass.pkcs11_pin_file");
		else if (ATTR("module-path") || ATTR("module-name"))
			uri_error("the module (module-path, module-name) is never taken from the URI: use health_pass.pkcs11_module");
		else
			uri_error("unknown attribute (accepted: token, manufacturer, serial, model, slot-id, object, id, type)");
#undef ATTR
		if (slot != NULL)
		{
			if (*slot != NULL)
				uri_error("an attribute is repeated");
			if (strlen(val) != vlen)
				uri_error("a text attribute holds a NUL byte");
			*slot = val;
		}
		if (!e)
			break;
		plen -= n + 1;
		p = e + 1;
	}
	if (u->object == NULL && u->id == NULL)
		uri_error("it names no key: give object= or id=");
}

void
hp_p11_check_uri(const char *uri)
{
	P11Uri		u;

	parse_uri(uri, &u);
}

/* ------------------------------------------------------------------ */
/* The module                                                          */
/* ------------------------------------------------------------------ */

/* Forget everything (after fork, or once finalized) without calling the module */
static void
p11_forget(void)
{
	for (HpP11Key *k = p11.keys; k; k = k->next)
		k->token = NULL;
	memset(p11.tokens, 0, sizeof(p11.tokens));
	p11.f = NULL;
	p11.pid = 0;
	p11.generation++;
	p11.pin_failed = false;
}

/* Close one token's session (its keys go too) */
static void
token_drop(P11Token *t)
{
	if (!t->used)
		return;
	if (p11.f && p11.pid == getpid())
	{
		if (t->logged_in)
			(void) p11.f->C_Logout(t->session);
		(void) p11.f->C_CloseSession(t->session);
	}
	for (HpP11Key *k = p11.keys; k; k = k->next)
		if (k->token == t)
			k->token = NULL;
	memset(t, 0, sizeof(*t));
}

/* Log out, close the sessions, finalize: at backend exit or on a new module */
static void
p11_finalize(void)
{
	if (p11.f && p11.pid == getpid())
	{
		for (int i = 0; i < P11_MAX_TOKENS; i++)
			token_drop(&p11.tokens[i]);
		(void) p11.f->C_Finalize(NULL);
	}
	p11_forget();
}

static void
p11_exit(int code, Datum arg)
{
	p11_finalize();
}

/* The module named by health_pass.pkcs11_module, loaded and initialized */
static void
p11_module(const char *keyname)
{
	CK_C_GetFunctionList getf;
	struct ck_function_list *f = NULL;
	ck_rv_t		rv;

	if (p11.f && p11.pid != getpid())
		p11_forget();			/* a forked child: start afresh */
	if (hp_pkcs11_module == NULL || hp_pkcs11_module[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("key: health_pass.pkcs11_module is not set, so signing key \"%s\" cannot be reached", hp_key_label(keyname))));
	if (p11.f && p11.path && strcmp(p11.path, hp_pkcs11_module) == 0)
		return;
	if (p11.f)
		p11_finalize();
	if (!p11.exit_hook)
	{
		on_proc_exit(p11_exit, (Datum) 0);
		p11.exit_hook = true;
	}
	if (p11.path)
	{
		pfree(p11.path);
		p11.path = NULL;
	}
	/* the handle of an earlier module stays open: unloading may run its destructors too soon */
	p11.dl = dlopen(hp_pkcs11_module, RTLD_NOW | RTLD_LOCAL);
	if (p11.dl == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_HP_KEY_UNAVAILABLE),
				 errmsg("key: the PKCS#11 module (health_pass.pkcs11_module) cannot be loaded")));
	getf = (CK_C_GetFunctionList) dlsym(p11.dl, "C_GetFunctionList");
	if (getf == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_HP_KEY_UNAVAILABLE),
				 errmsg("key: health_pass.pkcs11_module is not a PKCS#11 module (no C_GetFunctionList)")));
	rv = getf(&f);
	if (rv != CKR_OK || f == NULL || f->version.major != 2 || f->C_Initialize == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_HP_KEY_UNAVAILABLE),
				 errmsg("key: health_pass.pkcs11_module gives no PKCS#11 2.x function list (%s)", rv_name(rv))));
	rv = f->C_Initialize(NULL);
	if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED)
	{
		/* state inherited from a parent process: start over */
		(void) f->C_Finalize(NULL);
		rv = f->C_Initialize(NULL);
	}
	if (rv != CKR_OK)
		ereport(ERROR,
				(errcode(ERRCODE_HP_KEY_UNAVAILABLE),
				 errmsg("key: the PKCS#11 module cannot be initialized (%s)", rv_name(rv))));
	p11.f = f;
	p11.pid = getpid();
	p11.path = MemoryContextStrdup(TopMemoryContext, hp_pkcs11_module);
	p11.generation++;
}

/* Blank-padded PKCS#11 text field equals s? */
static bool
field_eq(const unsigned char *field, size_t size, const char *s)
{
	size_t		n = size;

	while (n > 0 && field[n - 1] == ' ')
		n--;
	return strlen(s) == n && memcmp(field, s, n) == 0;
}

/*
 * The one initialized token matching the URI.  None: false, unless raise
 * (then an error whose detail says what the module listed).
 */
static bool
find_slot(const char *keyname, const P11Uri *u, struct ck_token_info *info_out,
		  ck_slot_id_t *slot_out, bool raise)
{
	ck_slot_id_t slots[64];
	unsigned long n = lengthof(slots);
	ck_rv_t		rv = p11.f->C_GetSlotList(1, slots, &n);
	int			found = 0;
	int			noinfo = 0;
	int			uninit = 0;

	if (rv != CKR_OK)
		ereport(ERROR,
				(errcode(ERRCODE_HP_KEY_UNAVAILABLE),
				 errmsg("key: the PKCS#11 module lists no slots (%s)", rv_name(rv))));
	for (unsigned long i = 0; i < n; i++)
	{
		struct ck_token_info ti;

		if (u->has_slot_id && slots[i] != u->slot_id)
			continue;
		if (p11.f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
		{
			noinfo++;
			continue;
		}
		if (!(ti.flags & CKF_TOKEN_INITIALIZED))
		{
			uninit++;
			continue;
		}
		if ((u->token && !field_eq(ti.label, sizeof(ti.label), u->token)) ||
			(u->manufacturer && !field_eq(ti.manufacturer_id, sizeof(ti.manufacturer_id), u->manufacturer)) ||
			(u->serial && !field_eq(ti.serial_number, sizeof(ti.serial_number), u->serial)) ||
			(u->model && !field_eq(ti.model, sizeof(ti.model), u->model)))
			continue;
		if (found++ == 0)
		{
			*slot_out = slots[i];
			*info_out = ti;
		}
	}
	if (found == 0 && !raise)
		return false;
	if (found == 0)
		ereport(ERROR,
				(errcode(ERRCODE_HP_KEY_UNAVAILABLE),
				 errmsg("key: no PKCS#11 token matches the key_ref of signing key \"%s\"", hp_key_label(keyname)),
				 errdetail("The module lists %lu slots with a token: %d without token information, %d not initialized.",
						   n, noinfo, uninit)));
	if (found > 1)
		ereport(ERROR,
				(errcode(ERRCODE_HP_KEY_UNAVAILABLE),
				 errmsg("key: more than one PKCS#11 token matches the key_ref of signing key \"%s\"", hp_key_label(keyname)),
				 errhint("Name the token with token= (or serial=) in the URI.")));
	return true;
}

/* Has this backend a session open on any token? */
static bool
p11_tokens_in_use(void)
{
	for (int i = 0; i < P11_MAX_TOKENS; i++)
		if (p11.tokens[i].used)
			return true;
	return false;
}

/*
 * The identity of the PIN about to be used, as the wrong-PIN marks key it
 * (pinmark.c): SHA-256 of the module setting, the token's identity and the
 * PIN file's (device, inode, size, modification time).  Rewriting the file,
 * replacing it, naming another file or module, or another token, each give
 * another key.
 */
static void
pin_source_key(const struct ck_token_info *ti, const struct stat *st, uint8 *key)
{
	struct
	{
		uint8		label[32];
		uint8		manufacturer[32];
		uint8		model[16];
		uint8		serial[16];
		uint64		dev;
		uint64		ino;
		int64		size;
		int64		mtime_sec;
		int64		mtime_nsec;
	}			id;
	const char *module = hp_pkcs11_module ? hp_pkcs11_module : "";

	memset(&id, 0, sizeof(id));
	memcpy(id.label, ti->label, sizeof(id.label));
	memcpy(id.manufacturer, ti->manufacturer_id, sizeof(id.manufacturer));
	memcpy(id.model, ti->model, sizeof(id.model));
	memcpy(id.serial, ti->serial_number, sizeof(id.serial));
	id.dev = (uint64) st->st_dev;
	id.ino = (uint64) st->st_ino;
	id.size = (int64) st->st_size;
	id.mtime_sec = (int64) st->st_mtim.tv_sec;
	id.mtime_nsec = (int64) st->st_mtim.tv_nsec;
	/* the module path with its terminating NUL, then the fixed-size fields */
	hp_sha256(module, strlen(module) + 1, &id, sizeof(id), key);
}

static bool
is_pin_error(ck_rv_t rv)
{
	return rv == CKR_PIN_INCORRECT || rv == CKR_PIN_INVALID || rv == CKR_PIN_LEN_RANGE;
}

/*
 * Log in with the PIN of health_pass.pkcs11_pin_file.  A PIN the token
 * refused is not offered again, by this backend or any other, until the
 * PIN file changes (pinmark.c; without preloading, by this backend only).
 */
static void
token_login(P11Token *t, const struct ck_token_info *ti, const char *keyname)
{
	char		pin[P11_PIN_MAX + 2];
	size_t		len = 0;
	int			fd;
	struct stat st;
	bool		ok;
	ck_rv_t		rv;
	uint8		key[HP_PIN_KEY_LEN];
	bool		shared = hp_pin_marks_shared();

	if (hp_pkcs11_pin_file == NULL || hp_pkcs11_pin_file[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("key: the token of signing key \"%s\" needs a PIN: set health_pass.pkcs11_pin_file", hp_key_label(keyname))));
	fd = hp_key_file_open(keyname, hp_pkcs11_pin_file, "PIN file", P11_PIN_MAX + 1);
	if (fstat(fd, &st) != 0)
	{
		close(fd);
		ereport(ERROR,
				(errcode(ERRCODE_HP_KEY_UNAVAILABLE),
				 errmsg("key: the PIN file of signing key \"%s\" cannot be read", hp_key_label(keyname))));
	}
	pin_source_key(ti, &st, key);
	if (!shared && p11.pin_failed && memcmp(p11.pin_key, key, sizeof(key)) == 0)
	{
		close(fd);
		ereport(ERROR,
				(errcode(ERRCODE_HP_PIN_REFUSED),
				 errmsg("key: login to the token of signing key \"%s\" failed before with this PIN file (%s); not tried again by any backend until the file changes",
						hp_key_label(keyname), rv_name(p11.pin_rv)),
				 errdetail("Without shared_preload_libraries only this backend remembers it.")));
	}
	/* may wait for another backend's login with the same PIN, or refuse */
	PG_TRY();
	{
		hp_pin_claim(key, keyname);
	}
	PG_CATCH();
	{
		close(fd);
		PG_RE_THROW();
	}
	PG_END_TRY();
	/* from here until hp_pin_settle(): no error raised */
	ok = hp_read_fd(fd, pin, sizeof(pin), &len);
	close(fd);
	while (ok && len > 0 && (pin[len - 1] == '\n' || pin[len - 1] == '\r'))
		pin[--len] = '\0';
	if (!ok || len == 0 || len > P11_PIN_MAX)
	{
		explicit_bzero(pin, sizeof(pin));
		hp_pin_settle(key, false, 0);
		ereport(ERROR,
				(errcode(ERRCODE_HP_KEY_UNAVAILABLE),
				 errmsg("key: the PIN file of signing key \"%s\" holds no PIN of 1 to %d bytes", hp_key_label(keyname), P11_PIN_MAX)));
	}
	/*
	 * A token that cannot read its state just now (SoftHSM2: its files
	 * locked by another process) says so with a general error: try again
	 * a few times, never after a PIN error
	 */
	for (int attempt = 0;; attempt++)
	{
		rv = p11.f->C_Login(t->session, CKU_USER, (unsigned char *) pin, len);
		if (attempt >= P11_REINIT_TRIES ||
			(rv != CKR_GENERAL_ERROR && rv != CKR_DEVICE_ERROR && rv != CKR_FUNCTION_FAILED))
			break;
		pg_usleep(2000L * (attempt + 1) + (long) (random() % 10000));
	}
	explicit_bzero(pin, sizeof(pin));
	hp_pin_settle(key, is_pin_error(rv), (unsigned long) rv);
	if (is_pin_error(rv))
	{
		p11.pin_failed = true;
		memcpy(p11.pin_key, key, sizeof(key));
		p11.pin_rv = rv;
	}
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN)
		ereport(ERROR,
				(errcode(ERRCODE_HP_KEY_UNAVAILABLE),
				 errmsg("key: login to the token of signing key \"%s\" failed (%s)", hp_key_label(keyname), rv_name(rv))));
	p11.pin_failed = false;
	t->logged_in = true;
}

/* This backend's session on the token of slot, opened and logged in */
static P11Token *
token_session(ck_slot_id_t slot, const struct ck_token_info *ti, const char *keyname)
{
	P11Token   *volatile t = NULL;
	ck_rv_t		rv;

	for (int i = 0; i < P11_MAX_TOKENS; i++)
		if (p11.tokens[i].used && p11.tokens[i].slot == slot)
			return &p11.tokens[i];
	for (int i = 0; i < P11_MAX_TOKENS && t == NULL; i++)
		if (!p11.tokens[i].used)
			t = &p11.tokens[i];
	if (t == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_HP_KEY_UNAVAILABLE),
				 errmsg("key: a backend uses at most %d PKCS#11 tokens", P11_MAX_TOKENS)));
	rv = p11.f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &t->session);
	if (rv != CKR_OK)
		ereport(ERROR,
				(errcode(ERRCODE_HP_KEY_UNAVAILABLE),
				 errmsg("key: cannot open a session on the token of signing key \"%s\" (%s)", hp_key_label(keyname), rv_name(rv))));
	t->used = true;
	t->slot = slot;
	t->logged_in = false;
	if (ti->flags & CKF_LOGIN_REQUIRED)
	{
		PG_TRY();
		{
			token_login(t, ti, keyname);
		}
		PG_CATCH();
		{
			token_drop(t);
			PG_RE_THROW();
		}
		PG_END_TRY();
	}
	return t;
}

/* The private key object the URI names: exactly one */
static ck_object_handle_t
find_object(P11Token *t, const P11Uri *u, const char *keyname, int alg)
{
	ck_object_class_t cls = CKO_PRIVATE_KEY;
	struct ck_attribute tmpl[3];
	int			nt = 0;
	ck_object_handle_t objs[2];
	unsigned long n = 0;
	ck_rv_t		rv;
	ck_key_type_t ktype = (ck_key_type_t) -1;
	struct ck_attribute ka = {CKA_KEY_TYPE, &ktype, sizeof(ktype)};

	tmpl[nt++] = (struct ck_attribute) {CKA_CLASS, &cls, sizeof(cls)};
	if (u->object)
		tmpl[nt++] = (struct ck_attribute) {CKA_LABEL, u->object, strlen(u->object)};
	if (u->id)
		tmpl[nt++] = (struct ck_attribute) {CKA_ID, u->id, u->id_len};
	rv = p11.f->C_FindObjectsInit(t->session, tmpl, nt);
	if (rv == CKR_OK)
	{
		rv = p11.f->C_FindObjects(t->session, objs, 2, &n);
		(void) p11.f->C_FindObjectsFinal(t->session);
	}
	if (rv != CKR_OK)
		ereport(ERROR,
				(errcode(ERRCODE_HP_KEY_UNAVAILABLE),
				 errmsg("key: cannot search the token of signing key \"%s\" (%s)", hp_key_label(keyname), rv_name(rv))));
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_HP_KEY_UNAVAILABLE),
				 errmsg("key: no private key object on the token matches the key_ref of signing key \"%s\"", hp_key_label(keyname))));
	if (n > 1)
		ereport(ERROR,
				(errcode(ERRCODE_HP_KEY_UNAVAILABLE),
				 errmsg("key: more than one private key object matches the key_ref of signing key \"%s\"", hp_key_label(keyname)),
				 errhint("Name the object with both object= and id=.")));
	rv = p11.f->C_GetAttributeValue(t->session, objs[0], &ka, 1);
	if (rv != CKR_OK)
		ereport(ERROR,
				(errcode(ERRCODE_HP_KEY_UNAVAILABLE),
				 errmsg("key: cannot read the key type of signing key \"%s\" (%s)", hp_key_label(keyname), rv_name(rv))));
	if (ktype == CKK_EC)
	{
		static const uint8 p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
		uint8		params[64];
		struct ck_attribute pa = {CKA_EC_PARAMS, params, sizeof(params)};

		if (alg != HP_ALG_ES256)
			ereport(ERROR,
					(errcode(ERRCODE_HP_KEY_MISMATCH),
					 errmsg("key: the private key of signing key \"%s\" is not of the certificate's key type", hp_key_label(keyname))));
		rv = p11.f->C_GetAttributeValue(t->session, objs[0], &pa, 1);
		if (rv != CKR_OK || pa.value_len != sizeof(p256) || memcmp(params, p256, sizeof(p256)) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("key: the private key of signing key \"%s\" is not on curve P-256", hp_key_label(keyname))));
	}
	else if (ktype == CKK_RSA)
	{
		if (alg != HP_ALG_PS256)
			ereport(ERROR,
					(errcode(ERRCODE_HP_KEY_MISMATCH),
					 errmsg("key: the private key of signing key \"%s\" is not of the certificate's key type", hp_key_label(keyname))));
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("key: the private key of signing key \"%s\" is neither EC nor RSA", hp_key_label(keyname))));
	return objs[0];
}

/*
 * The key object of uri, from this backend's cache or found on the token
 * (module loaded, session opened and logged in as needed).
 */
HpP11Key *
hp_p11_open(const char *keyname, const char *uri, int alg)
{
	HpP11Key   *k;
	P11Uri		u;
	struct ck_token_info ti;
	ck_slot_id_t slot;
	P11Token   *t;
	ck_object_handle_t obj;

	parse_uri(uri, &u);
	p11_module(keyname);
	for (k = p11.keys; k; k = k->next)
		if (k->token != NULL && k->generation == p11.generation && k->alg == alg &&
			strcmp(k->uri, uri) == 0)
			return k;
	/*
	 * A token missing from the list may be one the module could not read
	 * as it initialized (SoftHSM2 reads its token files under a lock when
	 * C_Initialize runs; backends starting at once can miss a token): start
	 * the module afresh a few times before reporting it missing.
	 */
	for (int attempt = 0;; attempt++)
	{
		if (find_slot(keyname, &u, &ti, &slot, attempt >= P11_REINIT_TRIES))
			break;
		if (p11_tokens_in_use())
			(void) find_slot(keyname, &u, &ti, &slot, true);
		p11_finalize();
		pg_usleep(2000L * (attempt + 1) + (long) (random() % 20000));
		p11_module(keyname);
	}
	t = token_session(slot, &ti, keyname);
	obj = find_object(t, &u, keyname, alg);
	k = MemoryContextAllocZero(TopMemoryContext, sizeof(HpP11Key));
	k->uri = MemoryContextStrdup(TopMemoryContext, uri);
	k->generation = p11.generation;
	k->token = t;
	k->object = obj;
	k->alg = alg;
	k->next = p11.keys;
	p11.keys = k;
	return k;
}

/* Sign msg (whose SHA-256 is digest) on the token; the COSE form in sig */
void
hp_p11_sign(HpP11Key *k, const char *keyname, int alg, const uint8 *msg,
			size_t msg_len, const uint8 *digest, uint8 *sig, size_t *sig_len)
{
	struct ck_rsa_pkcs_pss_params pss = {CKM_SHA256, CKG_MGF1_SHA256, 32};
	struct ck_mechanism mech;
	unsigned long len = HP_MAX_SIG;
	ck_rv_t		rv;

	if (p11.f == NULL || p11.pid != getpid() || k->token == NULL ||
		k->generation != p11.generation)
		ereport(ERROR,
				(errcode(ERRCODE_HP_SIGN_FAILED),
				 errmsg("sign: the PKCS#11 session of signing key \"%s\" is gone", hp_key_label(keyname))));
	if (alg == HP_ALG_ES256)
		mech = (struct ck_mechanism) {CKM_ECDSA, NULL, 0};
	else if (!k->pss_over_digest)
		mech = (struct ck_mechanism) {CKM_SHA256_RSA_PKCS_PSS, &pss, sizeof(pss)};
	else
		mech = (struct ck_mechanism) {CKM_RSA_PKCS_PSS, &pss, sizeof(pss)};
	rv = p11.f->C_SignInit(k->token->session, &mech, k->object);
	if ((rv == CKR_MECHANISM_INVALID || rv == CKR_MECHANISM_PARAM_INVALID ||
		 rv == CKR_FUNCTION_NOT_SUPPORTED) && mech.mechanism == CKM_SHA256_RSA_PKCS_PSS)
	{
		k->pss_over_digest = true;
		mech = (struct ck_mechanism) {CKM_RSA_PKCS_PSS, &pss, sizeof(pss)};
		rv = p11.f->C_SignInit(k->token->session, &mech, k->object);
	}
	if (rv == CKR_OK && mech.mechanism == CKM_SHA256_RSA_PKCS_PSS)
		rv = p11.f->C_Sign(k->token->session, (unsigned char *) msg, msg_len, sig, &len);
	else if (rv == CKR_OK)
		rv = p11.f->C_Sign(k->token->session, (unsigned char *) digest, 32, sig, &len);
	if (rv == CKR_OK && alg == HP_ALG_ES256 && len != 64)
		rv = CKR_GENERAL_ERROR;
	if (rv != CKR_OK)
	{
		/* whatever went wrong, the next call starts from a new session */
		token_drop(k->token);
		ereport(ERROR,
				(errcode(ERRCODE_HP_SIGN_FAILED),
				 errmsg("sign: the PKCS#11 token did not sign with key \"%s\" (%s)", hp_key_label(keyname), rv_name(rv))));
	}
	*sig_len = len;
}
