/*
 * keys.c
 *    The signing keys of health_pass.signing_key: who may sign with which
 *    (health_pass.signing_grant), where the private key is (a PEM file under
 *    health_pass.key_directory, or a PKCS#11 object: pkcs11.c), and the
 *    signer issue() uses (hp_issue.h).
 *
 * hp_signer_open reads the key's row and its grants through their indexes
 * under the latest snapshot (as catalog lookups are: a grant revoked and
 * committed counts from the next statement, whatever the isolation level),
 * without the caller's table privileges (a granted signer cannot read
 * key_ref), and the revoked_at of the DSC's trust_list row (issue() refuses a
 * DSC revoked there); it checks the grant on every call, then
 * takes the private key from this backend's cache when the row (key_ref and
 * certificate) and, for a file, the file (device, inode, size, times) are
 * those it was loaded from; otherwise it loads it and proves, once, that it
 * is the certificate's key: a random challenge signed with it must verify
 * with the certificate's public key through verify/keys.c, the code check()
 * uses.
 *
 * Within one statement the row and the grant's answer are remembered (the
 * "statement memo"): a later call with the same key name, the same current
 * user and the same active snapshot (the same MVCC snapshot data, command id
 * and transaction) takes them from the memo instead of scanning the table
 * and its grants again.  Under one snapshot the scans cannot give another
 * answer; what could change it is forgotten through callbacks: a
 * subtransaction's abort (rows of the aborted subtransaction become
 * invisible under the same snapshot), a relcache invalidation of
 * signing_key or signing_grant (TRUNCATE, DDL, DROP EXTENSION), and a syscache
 * invalidation of pg_authid or pg_auth_members (the grant's role renamed,
 * membership or superuser changed) -- the moments at which the scans of the
 * full path could see something new.  A PEM file's checks (two stat calls)
 * run at the first call of each statement and again at least once a second
 * within a long one, so a key file made readable by others is refused from
 * the next statement on, and at most a second later within a statement
 * (docs/design/signing.md, "The statement memo").
 *
 * Nothing here puts key material, a PIN or a file's content in a message:
 * messages name the stage ("key: ", "sign: "), the signing key's name and
 * what went wrong (docs/design/signing.md).
 */
#include "postgres.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "access/xact.h"
#include "storage/proc.h"
#include "utils/timestamp.h"

#include "common/hp_common.h"
#include "issue/hp_signing.h"

#define HP_KEY_FILE_MAX (64 * 1024)
/* how long a PEM file's checks are trusted within a statement */
#define HP_FILE_RECHECK_USECS 1000000

/* The private key of one signing_key row, kept for the backend's life */
typedef struct CachedKey
{
	int64		id;				/* hash key: signing_key.id */
	char	   *key_ref;		/* the row it was loaded for (TopMemoryContext) */
	uint8	   *cert;
	size_t		cert_len;
	bool		valid;
	bool		proven;			/* challenge verified with the certificate */
	bool		is_file;
	/* file: the file it was read from (resolved) and the key */
	char	   *dir_setting;	/* health_pass.key_directory then */
	char	   *dir;
	char	   *full;
	dev_t		dev;
	ino_t		ino;
	off_t		size;
	struct timespec mtime;
	struct timespec ctime;
	EVP_PKEY   *pkey;
	EVP_PKEY_CTX *sctx;			/* sign context: SHA-256 (and PSS for RSA) */
	/* pkcs11: the object (pkcs11.c) */
	HpP11Key   *p11;
} CachedKey;

struct HpSigner
{
	HpSignerInfo info;
	CachedKey  *ck;
	char	   *key_ref;
};

static HTAB *key_cache = NULL;
static EVP_MD *sha256 = NULL;
static bool secure_heap_tried = false;

/*
 * The statement memo: the last key opened, for the rest of the statement
 * (see the head comment).  Its data live in memo_cxt, replaced only by the
 * next fill; valid = false forgets it.
 */
static struct
{
	bool		valid;
	/* the key: what the call asked and who asked */
	char	   *name;
	Oid			user;
	/* the snapshot the row and the grant were read under */
	LocalTransactionId lxid;
	Snapshot	snap;
	TransactionId xmin;
	TransactionId xmax;
	CommandId	curcid;
	uint32		xcnt;
	TransactionId *xip;			/* copies, in memo_cxt */
	int32		subxcnt;
	TransactionId *subxip;
	bool		suboverflowed;
	bool		recovery;		/* takenDuringRecovery */
	TimestampTz whenTaken;
	uint64		stmt;			/* the top-level statement it was filled in
								 * (hp_statement_count) */
	/* the relations whose invalidation forgets the memo */
	Oid			key_relid;
	Oid			grant_relid;
	/* what the full path found */
	HpSignerInfo info;
	char	   *key_ref;
	CachedKey  *ck;
	TimestampTz file_checked;	/* when the PEM file's checks last ran */
} memo;
static MemoryContext memo_cxt = NULL;
static bool memo_callbacks = false;

static void
memo_forget(void)
{
	memo.valid = false;
}

static void
memo_relcache_cb(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == memo.key_relid || relid == memo.grant_relid)
		memo_forget();
}

static void
memo_syscache_cb(Datum arg, int cacheid, uint32 hashvalue)
{
	memo_forget();
}

static void
memo_xact_cb(XactEvent event, void *arg)
{
	memo_forget();
}

static void
memo_subxact_cb(SubXactEvent event, SubTransactionId mySubid,
				SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		memo_forget();
}

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static void
keys_init(void)
{
	if (sha256 == NULL)
	{
		sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
		if (sha256 == NULL)
			elog(ERROR, "could not initialise SHA-256 in OpenSSL");
	}
	if (key_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(int64);
		ctl.entrysize = sizeof(CachedKey);
		ctl.hcxt = TopMemoryContext;
		key_cache = hash_create("health_pass signing keys", 16, &ctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	if (!memo_callbacks)
	{
		memo_cxt = AllocSetContextCreate(TopMemoryContext, "health_pass signer memo",
										 ALLOCSET_SMALL_SIZES);
		CacheRegisterRelcacheCallback(memo_relcache_cb, (Datum) 0);
		CacheRegisterSyscacheCallback(AUTHOID, memo_syscache_cb, (Datum) 0);
		CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, memo_syscache_cb, (Datum) 0);
		CacheRegisterSyscacheCallback(AUTHMEMMEMROLE, memo_syscache_cb, (Datum) 0);
		RegisterXactCallback(memo_xact_cb, NULL);
		RegisterSubXactCallback(memo_subxact_cb, NULL);
		memo_callbacks = true;
	}
}

static void
sha256_of(const uint8 *a, size_t alen, const uint8 *b, size_t blen,
		  const uint8 *c, size_t clen, uint8 *out)
{
	static EVP_MD_CTX *md = NULL;
	unsigned int olen = 0;
	bool		ok;

	if (md == NULL)
		md = EVP_MD_CTX_new();
	ok = md != NULL &&
		EVP_DigestInit_ex(md, sha256, NULL) == 1 &&
		EVP_DigestUpdate(md, a, alen) == 1 &&
		(blen == 0 || EVP_DigestUpdate(md, b, blen) == 1) &&
		(clen == 0 || EVP_DigestUpdate(md, c, clen) == 1) &&
		EVP_DigestFinal_ex(md, out, &olen) == 1 && olen == 32;
	if (!ok)
	{
		ERR_clear_error();
		elog(ERROR, "SHA-256 failed in OpenSSL");
	}
}

/* Free what a cache entry holds (not the entry) */
static void
cached_key_clear(CachedKey *ck)
{
	if (memo.ck == ck)
		memo_forget();
	EVP_PKEY_CTX_free(ck->sctx);
	EVP_PKEY_free(ck->pkey);
	ck->sctx = NULL;
	ck->pkey = NULL;
	if (ck->dir_setting)
		pfree(ck->dir_setting);
	if (ck->dir)
		pfree(ck->dir);
	if (ck->full)
		pfree(ck->full);
	ck->dir_setting = ck->dir = ck->full = NULL;
	ck->p11 = NULL;				/* owned by pkcs11.c */
	ck->valid = false;
	ck->proven = false;
}

/* Read all of fd (at most bufsize - 1 bytes); false when longer or on error */
bool
hp_read_fd(int fd, char *buf, size_t bufsize, size_t *len)
{
	size_t		n = 0;

	for (;;)
	{
		ssize_t		r = read(fd, buf + n, bufsize - 1 - n);

		if (r < 0)
		{
			if (errno == EINTR)
				continue;
			return false;
		}
		if (r == 0)
			break;
		n += r;
		if (n >= bufsize - 1)
		{
			char		extra;

			if (read(fd, &extra, 1) != 0)
				return false;
			break;
		}
	}
	buf[n] = '\0';
	*len = n;
	return true;
}

/*
 * A key name as a message echoes it: whole up to HP_KEY_LABEL_MAX bytes,
 * else cut there on a character boundary and marked "..." (a caller may
 * pass a name of any length; the message must not carry it whole)
 */
const char *
hp_key_label(const char *name)
{
	int			len = strlen(name);

	if (len <= HP_KEY_LABEL_MAX)
		return name;
	len = pg_mbcliplen(name, len, HP_KEY_LABEL_MAX);
	return psprintf("%.*s...", len, name);
}

/* Is NAME a plain relative path: no absolute path, no "..", no empty part */
static bool
relative_name_ok(const char *name)
{
	const char *p = name;

	if (*name == '\0' || *name == '/')
		return false;
	for (;;)
	{
		const char *e = strchr(p, '/');
		size_t		n = e ? (size_t) (e - p) : strlen(p);

		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		if (!e)
			return true;
		p = e + 1;
	}
}

/*
 * Open NAME under health_pass.key_directory for reading, refusing: no
 * directory set; a directory not owned by the server's OS user or writable
 * by others; a name with "..", an absolute name, or one that resolves
 * (symbolic links followed) outside the directory; anything but a regular
 * file owned by the server's OS user with no permission for group or
 * others; a file larger than max_size.  keyname names the signing key in
 * messages, what says "key file" or "PIN file".
 */
static char last_dir[PATH_MAX];	/* what the last hp_key_file_open resolved */
static char last_full[PATH_MAX];

int
hp_key_file_open(const char *keyname, const char *name, const char *what,
				 size_t max_size)
{
	char	   *dir = last_dir;
	char	   *full = last_full;
	char		path[PATH_MAX];
	struct stat st;
	size_t		dlen;
	int			fd;

	if (hp_key_directory == NULL || hp_key_directory[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("key: health_pass.key_directory is not set, so the %s of signing key \"%s\" cannot be read",
						what, hp_key_label(keyname))));
	if (!relative_name_ok(name))
		ereport(ERROR,
				(errcode(ERRCODE_HP_KEY_UNSAFE),
				 errmsg("key: the %s of signing key \"%s\" must be named relative to health_pass.key_directory, without \"..\"",
						what, hp_key_label(keyname))));
	last_dir[0] = last_full[0] = '\0';
	if (hp_key_directory[0] != '/' || realpath(hp_key_directory, dir) == NULL ||
		stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("key: health_pass.key_directory is not an absolute path to a directory")));
	if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)))
		ereport(ERROR,
				(errcode(ERRCODE_HP_KEY_UNSAFE),
				 errmsg("key: health_pass.key_directory must be owned by the server's OS user and not writable by others")));
	dlen = strlen(dir);
	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int) sizeof(path))
		ereport(ERROR,
				(errcode(ERRCODE_HP_KEY_UNSAFE),
				 errmsg("key: the %s name of signing key \"%s\" is too long", what, hp_key_label(keyname))));
	if (realpath(path, full) == NULL)
	{
		int			code = errno == ENOENT ? ERRCODE_UNDEFINED_FILE : ERRCODE_HP_KEY_UNAVAILABLE;

		ereport(ERROR,
				(errcode(code),
				 errmsg("key: the %s of signing key \"%s\" does not exist or cannot be reached",
						what, hp_key_label(keyname))));
	}
	if (strncmp(full, dir, dlen) != 0 || (full[dlen] != '/' && dlen > 1))
		ereport(ERROR,
				(errcode(ERRCODE_HP_KEY_UNSAFE),
				 errmsg("key: the %s of signing key \"%s\" resolves outside health_pass.key_directory",
						what, hp_key_label(keyname))));
	fd = open(full, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		ereport(ERROR,
				(errcode(ERRCODE_HP_KEY_UNAVAILABLE),
				 errmsg("key: the %s of signing key \"%s\" cannot be opened", what, hp_key_label(keyname))));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
	{
		close(fd);
		ereport(ERROR,
				(errcode(ERRCODE_HP_KEY_UNAVAILABLE),
				 errmsg("key: the %s of signing key \"%s\" is not a regular file", what, hp_key_label(keyname))));
	}
	if (st.st_uid != geteuid() || (st.st_mode & (S_IRWXG | S_IRWXO)))
	{
		close(fd);
		ereport(ERROR,
				(errcode(ERRCODE_HP_KEY_UNSAFE),
				 errmsg("key: the %s of signing key \"%s\" must be owned by the server's OS user and readable by no one else (mode 0600 or 0400)",
						what, hp_key_label(keyname))));
	}
	if ((size_t) st.st_size > max_size)
	{
		close(fd);
		ereport(ERROR,
				(errcode(ERRCODE_HP_KEY_UNAVAILABLE),
				 errmsg("key: the %s of signing key \"%s\" is larger than %zu bytes", what, hp_key_label(keyname), max_size)));
	}
	return fd;
}

/* ------------------------------------------------------------------ */
/* Certificates                                                        */
/* ------------------------------------------------------------------ */

/* The algorithm a certificate's key signs with: ES256, PS256, or an error */
static int
certificate_alg(const uint8 *der, size_t len)
{
	const unsigned char *p = der;
	X509	   *x = d2i_X509(NULL, &p, (long) len);
	EVP_PKEY   *pk;
	int			alg = 0;
	char		what[80] = "";

	if (x == NULL || p != der + len)
	{
		X509_free(x);
		ERR_clear_error();
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("key: the certificate is not a DER-encoded X.509 certificate")));
	}
	pk = X509_get0_pubkey(x);
	if (pk != NULL && EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC)
	{
		char		group[64] = "";
		size_t		glen;

		if (EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME,
										   group, sizeof(group), &glen) &&
			strcmp(group, "prime256v1") == 0)
			alg = HP_ALG_ES256;
		else
			snprintf(what, sizeof(what), "an EC key on curve %s (only P-256 signs ES256)",
					 group[0] ? group : "(unnamed)");
	}
	else if (pk != NULL && EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA)
	{
		if (EVP_PKEY_get_bits(pk) >= 2048)
			alg = HP_ALG_PS256;
		else
			snprintf(what, sizeof(what), "an RSA key of %d bits (PS256 needs 2048 or more)",
					 EVP_PKEY_get_bits(pk));
	}
	else
		snprintf(what, sizeof(what), "a key that is neither EC P-256 nor RSA");
	X509_free(x);
	ERR_clear_error();
	if (alg == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("key: the certificate holds %s", what)));
	return alg;
}

/* Check a key_ref's form (not whether the key exists); raises */
static void
check_key_ref(const char *ref)
{
	if (strncmp(ref, "file:", 5) == 0)
	{
		if (!relative_name_ok(ref + 5))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("key: a file: key_ref names a file relative to health_pass.key_directory, without \"..\" or a leading \"/\"")));
		if (strlen(ref + 5) >= PATH_MAX / 2)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("key: the file: key_ref is too long")));
	}
	else if (strncmp(ref, "pkcs11:", 7) == 0)
		hp_p11_check_uri(ref);
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("key: key_ref must be file:NAME or a pkcs11: URI")));
}

/* ------------------------------------------------------------------ */
/* PEM keys                                                            */
/* ------------------------------------------------------------------ */

/* Never prompt for a passphrase: an encrypted PEM is refused */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

/*
 * Keep private keys in OpenSSL's secure heap where it can: mlock'ed and
 * excluded from core dumps (MADV_DONTDUMP).  Once per backend, only in one
 * that loads a PEM key.
 */
static void
secure_heap(void)
{
	if (secure_heap_tried)
		return;
	secure_heap_tried = true;
	if (!CRYPTO_secure_malloc_initialized())
		(void) CRYPTO_secure_malloc_init(64 * 1024, 32);
}

/* Load (or reuse) the PEM key of ck; sets ck->pkey and its sign context */
static void
pem_load(CachedKey *ck, const char *keyname, const char *name, int alg, bool recheck)
{
	int			fd;
	struct stat st;
	char	   *buf;
	size_t		len = 0;
	bool		ok;
	BIO		   *bio;
	EVP_PKEY   *pk;
	EVP_PKEY_CTX *ctx;

	/*
	 * The key loaded before, when the setting, the directory's owner and
	 * mode, and the file (the same inode, size, modification and change
	 * times: a chmod or chown changes ctime) are as they were: two stat
	 * calls instead of resolving and opening the file again
	 */
	if (ck->valid && ck->pkey != NULL && ck->full != NULL &&
		hp_key_directory != NULL && strcmp(ck->dir_setting, hp_key_directory) == 0)
	{
		struct stat ds;

		/* checked earlier in this statement, less than a second ago */
		if (!recheck)
			return;
		if (stat(ck->dir, &ds) == 0 && S_ISDIR(ds.st_mode) && ds.st_uid == geteuid() &&
			!(ds.st_mode & (S_IWGRP | S_IWOTH)) &&
			lstat(ck->full, &st) == 0 &&
			ck->dev == st.st_dev && ck->ino == st.st_ino && ck->size == st.st_size &&
			ck->mtime.tv_sec == st.st_mtim.tv_sec && ck->mtime.tv_nsec == st.st_mtim.tv_nsec &&
			ck->ctime.tv_sec == st.st_ctim.tv_sec && ck->ctime.tv_nsec == st.st_ctim.tv_nsec)
			return;
	}
	cached_key_clear(ck);
	fd = hp_key_file_open(keyname, name, "key file", HP_KEY_FILE_MAX);
	if (fstat(fd, &st) != 0)
	{
		close(fd);
		ereport(ERROR,
				(errcode(ERRCODE_HP_KEY_UNAVAILABLE),
				 errmsg("key: the key file of signing key \"%s\" cannot be read", hp_key_label(keyname))));
	}
	secure_heap();
	buf = palloc(HP_KEY_FILE_MAX + 1);
	ok = hp_read_fd(fd, buf, HP_KEY_FILE_MAX + 1, &len);
	close(fd);
	pk = NULL;
	if (ok)
	{
		bio = BIO_new_mem_buf(buf, (int) len);
		if (bio)
			pk = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
		BIO_free(bio);
	}
	explicit_bzero(buf, HP_KEY_FILE_MAX + 1);
	pfree(buf);
	ERR_clear_error();
	if (pk == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_HP_KEY_UNAVAILABLE),
				 errmsg("key: the key file of signing key \"%s\" holds no unencrypted PEM private key", hp_key_label(keyname))));
	if ((alg == HP_ALG_ES256 && EVP_PKEY_get_base_id(pk) != EVP_PKEY_EC) ||
		(alg == HP_ALG_PS256 && EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA))
	{
		EVP_PKEY_free(pk);
		ereport(ERROR,
				(errcode(ERRCODE_HP_KEY_MISMATCH),
				 errmsg("key: the private key of signing key \"%s\" is not of the certificate's key type", hp_key_label(keyname))));
	}
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
	if (ctx == NULL ||
		EVP_PKEY_sign_init(ctx) != 1 ||
		EVP_PKEY_CTX_set_signature_md(ctx, sha256) != 1 ||
		(alg == HP_ALG_PS256 &&
		 (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) != 1 ||
		  EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, 32) != 1 ||
		  EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, sha256) != 1)))
	{
		EVP_PKEY_CTX_free(ctx);
		EVP_PKEY_free(pk);
		ERR_clear_error();
		ereport(ERROR,
				(errcode(ERRCODE_HP_KEY_UNAVAILABLE),
				 errmsg("key: the private key of signing key \"%s\" cannot sign", hp_key_label(keyname))));
	}
	ck->pkey = pk;
	ck->sctx = ctx;
	ck->is_file = true;
	ck->dir_setting = MemoryContextStrdup(TopMemoryContext, hp_key_directory);
	ck->dir = MemoryContextStrdup(TopMemoryContext, last_dir);
	ck->full = MemoryContextStrdup(TopMemoryContext, last_full);
	ck->dev = st.st_dev;
	ck->ino = st.st_ino;
	ck->size = st.st_size;
	ck->mtime = st.st_mtim;
	ck->ctime = st.st_ctim;
	ck->valid = true;
	ck->proven = false;
}

/*
 * One DER INTEGER of an ECDSA-Sig-Value (non-negative, at most 32 bytes of
 * value) at *p (end e) into out, 32 bytes big-endian; false if malformed
 */
static bool
der_int32(const uint8 **p, const uint8 *e, uint8 *out)
{
	const uint8 *q = *p;
	size_t		n;

	if (e - q < 2 || q[0] != 0x02 || q[1] == 0 || q[1] > 33 || (size_t) (e - q - 2) < q[1])
		return false;
	n = q[1];
	q += 2;
	if (q[0] & 0x80)
		return false;			/* negative */
	if (n == 33)
	{
		if (q[0] != 0)
			return false;
		q++;
		n--;
	}
	memset(out, 0, 32 - n);
	memcpy(out + 32 - n, q, n);
	*p = q + n;
	return true;
}

/* An ES256 signature in DER (ECDSA-Sig-Value) as r || s, 64 bytes */
static bool
der_to_rs(const uint8 *der, size_t len, uint8 *sig)
{
	const uint8 *p = der;
	const uint8 *e = der + len;

	/* SEQUENCE, short-form length (at most 2 + 35 + 35 bytes) */
	if (len < 8 || p[0] != 0x30 || p[1] != len - 2)
		return false;
	p += 2;
	return der_int32(&p, e, sig) && der_int32(&p, e, sig + 32) && p == e;
}

/* Sign a SHA-256 digest with a PEM key: the COSE form in sig */
static bool
pem_sign(CachedKey *ck, int alg, const uint8 *digest, uint8 *sig, size_t *sig_len)
{
	uint8		out[HP_MAX_SIG + 16];
	size_t		olen = sizeof(out);

	if (EVP_PKEY_sign(ck->sctx, out, &olen, digest, 32) != 1)
	{
		ERR_clear_error();
		return false;
	}
	if (alg == HP_ALG_ES256)
	{
		*sig_len = 64;
		return der_to_rs(out, olen, sig);
	}
	if (olen > HP_MAX_SIG)
		return false;
	memcpy(sig, out, olen);
	*sig_len = olen;
	return true;
}

/* ------------------------------------------------------------------ */
/* Either kind                                                         */
/* ------------------------------------------------------------------ */

/*
 * Sign msg, whose SHA-256 is digest, with ck's key (a PEM key and ES256 on
 * a token sign the digest; PS256 on a token the message); raises with the
 * stage "sign"
 */
static void
sign_digest(CachedKey *ck, const char *keyname, int alg, const uint8 *msg,
			size_t msg_len, const uint8 *digest, uint8 *sig, size_t *sig_len)
{
	if (ck->is_file)
	{
		if (!pem_sign(ck, alg, digest, sig, sig_len))
			ereport(ERROR,
					(errcode(ERRCODE_HP_SIGN_FAILED),
					 errmsg("sign: OpenSSL could not sign with key \"%s\"", hp_key_label(keyname))));
	}
	else
		hp_p11_sign(ck->p11, keyname, alg, msg, msg_len, digest, sig, sig_len);
}

/*
 * Prove that ck's private key is the certificate's: sign a random 32-byte
 * digest and verify the signature with the certificate's public key, the
 * way check() verifies a pass (verify/keys.c).
 */
static void
prove_key(CachedKey *ck, const char *keyname, int alg, const uint8 *der, size_t der_len)
{
	uint8		challenge[32];
	uint8		digest[32];
	uint8		sig[HP_MAX_SIG];
	size_t		sig_len = 0;
	HpKey	   *pub;
	HpCose		c;
	bool		ok = false;

	if (RAND_bytes(challenge, sizeof(challenge)) != 1)
	{
		ERR_clear_error();
		elog(ERROR, "OpenSSL could not make random bytes");
	}
	sha256_of(challenge, sizeof(challenge), NULL, 0, NULL, 0, digest);
	sign_digest(ck, keyname, alg, challenge, sizeof(challenge), digest, sig, &sig_len);
	pub = hp_key_get(der, der_len);
	if (pub != NULL)
	{
		memset(&c, 0, sizeof(c));
		c.has_alg = true;
		c.alg_is_int = true;
		c.alg = alg;
		c.sig = sig;
		c.sig_len = sig_len;
		(void) hp_key_verify(pub, &c, digest, &ok);
		hp_key_release(pub);
	}
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_HP_KEY_MISMATCH),
				 errmsg("key: the private key of signing key \"%s\" does not match its certificate", hp_key_label(keyname)),
				 errdetail("A challenge signed with the private key did not verify with the certificate's public key.")));
	ck->proven = true;
}

/* Find or make the cache entry of key id for (key_ref, certificate) */
static CachedKey *
cache_entry(int64 id, const char *key_ref, const uint8 *der, size_t der_len)
{
	CachedKey  *ck;
	bool		found;

	keys_init();
	ck = hash_search(key_cache, &id, HASH_ENTER, &found);
	if (!found)
		memset(((char *) ck) + sizeof(int64), 0, sizeof(CachedKey) - sizeof(int64));
	else if (strcmp(ck->key_ref, key_ref) != 0 || ck->cert_len != der_len ||
			 memcmp(ck->cert, der, der_len) != 0)
	{
		/* the row changed: forget the key, load and prove it afresh */
		cached_key_clear(ck);
		pfree(ck->key_ref);
		pfree(ck->cert);
		ck->key_ref = NULL;
	}
	if (ck->key_ref == NULL)
	{
		ck->key_ref = MemoryContextStrdup(TopMemoryContext, key_ref);
		ck->cert = MemoryContextAlloc(TopMemoryContext, der_len);
		memcpy(ck->cert, der, der_len);
		ck->cert_len = der_len;
	}
	return ck;
}

/* Reach the private key of ck and prove it once; raises with stage "key" */
static void
open_private(CachedKey *ck, const char *keyname, const char *key_ref, int alg,
			 const uint8 *der, size_t der_len, bool recheck)
{
	if (strncmp(key_ref, "file:", 5) == 0)
		pem_load(ck, keyname, key_ref + 5, alg, recheck);
	else
	{
		HpP11Key   *k = hp_p11_open(keyname, key_ref, alg);

		/* an object found afresh (a new session) is proven afresh */
		if (k != ck->p11)
			ck->proven = false;
		ck->is_file = false;
		ck->p11 = k;
		ck->valid = true;
	}
	if (!ck->proven)
		prove_key(ck, keyname, alg, der, der_len);
}

/* ------------------------------------------------------------------ */
/* The table and its grants                                            */
/* ------------------------------------------------------------------ */

static AttrNumber
key_attnum(Oid relid, const char *rel, const char *name)
{
	AttrNumber	a = get_attnum(relid, name);

	if (a == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("health_pass.%s has no column \"%s\"", rel, name)));
	return a;
}

Oid
hp_signing_key_relid(void)
{
	Oid			relid;

	/* as found by the statement memo: a relcache invalidation forgets it */
	if (memo.valid && OidIsValid(memo.key_relid))
		return memo.key_relid;
	relid = hp_extension_relation_oid("signing_key");

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("key: health_pass.signing_key is missing (ALTER EXTENSION health_pass UPDATE)")));
	return relid;
}

/* Column numbers of signing_key, looked up once per relation */
static struct
{
	Oid			relid;
	AttrNumber	id, name, kid, cert, key_ref, alg, country, from, until, usage;
} kcols;

/*
 * Whether the trust list holds this DSC (by fingerprint, the SHA-256 of its
 * DER: unique, so one row at most) with revoked_at set (any value,
 * 'infinity' too, as check() counts it), that time in *at_out.  A DSC
 * revoked there makes every pass it signed key_revoked whatever its iat
 * (verify/check.c), so issue() refuses to sign with it.
 */
static bool
dsc_revoked_at(const uint8 *cert, size_t len, Snapshot snap, TimestampTz *at_out)
{
	bool		revoked = false;
	uint8		md[32];
	Oid			relid = hp_extension_relation_oid("trust_list");
	Oid			idx = hp_extension_relation_oid("trust_list_fingerprint_key");
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData skey;
	HeapTuple	tup;
	AttrNumber	att_fp,
				att_revoked;
	bytea	   *fp;

	if (!OidIsValid(relid) || !OidIsValid(idx))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("key: health_pass.trust_list or its index trust_list_fingerprint_key is missing")));
	att_fp = key_attnum(relid, "trust_list", "fingerprint");
	att_revoked = key_attnum(relid, "trust_list", "revoked_at");
	hp_sha256(cert, len, NULL, 0, md);
	fp = hp_bytea(md, sizeof(md));
	rel = table_open(relid, AccessShareLock);
	ScanKeyInit(&skey, att_fp, BTEqualStrategyNumber, F_BYTEAEQ, PointerGetDatum(fp));
	scan = systable_beginscan(rel, idx, true, snap, 1, &skey);
	if ((tup = systable_getnext(scan)) != NULL)
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, att_revoked, RelationGetDescr(rel), &isnull);

		revoked = !isnull;
		if (revoked)
			*at_out = DatumGetTimestampTz(d);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	pfree(fp);
	return revoked;
}

/* Read the row of key name into s->info and s->key_ref; false if none */
static bool
read_key_row(const char *name, HpSigner *s)
{
	Oid			relid = hp_signing_key_relid();
	Oid			idx = hp_extension_relation_oid("signing_key_name_key");
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData skey;
	HeapTuple	tup;
	bool		found = false;
	Snapshot	snap;

	if (!OidIsValid(idx))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("key: the index health_pass.signing_key_name_key is missing")));
	if (kcols.relid != relid)
	{
		kcols.relid = InvalidOid;
		kcols.id = key_attnum(relid, "signing_key", "id");
		kcols.name = key_attnum(relid, "signing_key", "name");
		kcols.kid = key_attnum(relid, "signing_key", "kid");
		kcols.cert = key_attnum(relid, "signing_key", "certificate");
		kcols.key_ref = key_attnum(relid, "signing_key", "key_ref");
		kcols.alg = key_attnum(relid, "signing_key", "alg");
		kcols.country = key_attnum(relid, "signing_key", "country");
		kcols.from = key_attnum(relid, "signing_key", "valid_from");
		kcols.until = key_attnum(relid, "signing_key", "valid_until");
		kcols.usage = key_attnum(relid, "signing_key", "key_usage");
		kcols.relid = relid;
	}
	snap = RegisterSnapshot(GetLatestSnapshot());
	rel = table_open(relid, AccessShareLock);
	/* name is COLLATE "C", as ScanKeyInit's comparison */
	ScanKeyInit(&skey, kcols.name, BTEqualStrategyNumber,
				F_TEXTEQ, CStringGetTextDatum(name));
	scan = systable_beginscan(rel, idx, true, snap, 1, &skey);
	if ((tup = systable_getnext(scan)) != NULL)
	{
		TupleDesc	desc = RelationGetDescr(rel);
		bool		isnull;
		Datum		d;
		bytea	   *b;
		char	   *s_alg;

		found = true;
		s->info.keyid = DatumGetInt64(heap_getattr(tup, kcols.id, desc, &isnull));
		s->info.name = pstrdup(name);
		d = heap_getattr(tup, kcols.kid, desc, &isnull);
		b = DatumGetByteaPCopy(d);
		s->info.kid = (const uint8 *) VARDATA(b);
		s->info.kid_len = VARSIZE(b) - VARHDRSZ;
		d = heap_getattr(tup, kcols.cert, desc, &isnull);
		b = DatumGetByteaPCopy(d);
		s->info.certificate = (const uint8 *) VARDATA(b);
		s->info.certificate_len = VARSIZE(b) - VARHDRSZ;
		d = heap_getattr(tup, kcols.key_ref, desc, &isnull);
		s->key_ref = TextDatumGetCString(d);
		d = heap_getattr(tup, kcols.alg, desc, &isnull);
		s_alg = TextDatumGetCString(d);
		s->info.alg = strcmp(s_alg, "PS256") == 0 ? HP_ALG_PS256 : HP_ALG_ES256;
		d = heap_getattr(tup, kcols.country, desc, &isnull);
		if (!isnull)
			strlcpy(s->info.country, TextDatumGetCString(d), sizeof(s->info.country));
		d = heap_getattr(tup, kcols.from, desc, &isnull);
		s->info.not_before = isnull ? DT_NOBEGIN : DatumGetTimestampTz(d);
		d = heap_getattr(tup, kcols.until, desc, &isnull);
		s->info.not_after = isnull ? DT_NOEND : DatumGetTimestampTz(d);
		d = heap_getattr(tup, kcols.usage, desc, &isnull);
		s->info.key_usage = hp_key_usage_bits(d, isnull);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	if (found)
		s->info.dsc_revoked = dsc_revoked_at(s->info.certificate,
											 s->info.certificate_len, snap,
											 &s->info.dsc_revoked_at);
	UnregisterSnapshot(snap);
	return found;
}

/*
 * May the current user sign with key id?  Superusers may; anyone else needs
 * a signing_grant row of the key for a role whose privileges it has
 * (has_privs_of_role: the role itself, or a role it is a member of with
 * INHERIT), and that role must still carry the name it was granted under (a
 * dropped role whose OID is reused gains nothing).
 */
static bool
may_sign(int64 id)
{
	Oid			me = GetUserId();
	Oid			relid;
	Oid			idx;
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData skey;
	HeapTuple	tup;
	bool		ok = false;
	AttrNumber	att_role,
				att_name;
	Snapshot	snap;

	if (superuser_arg(me))
		return true;
	relid = hp_extension_relation_oid("signing_grant");
	idx = hp_extension_relation_oid("signing_grant_pkey");
	if (!OidIsValid(relid) || !OidIsValid(idx))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("key: health_pass.signing_grant or its index is missing")));
	att_role = key_attnum(relid, "signing_grant", "role");
	att_name = key_attnum(relid, "signing_grant", "role_name");
	snap = RegisterSnapshot(GetLatestSnapshot());
	rel = table_open(relid, AccessShareLock);
	ScanKeyInit(&skey, key_attnum(relid, "signing_grant", "key_id"), BTEqualStrategyNumber,
				F_INT8EQ, Int64GetDatum(id));
	scan = systable_beginscan(rel, idx, true, snap, 1, &skey);
	while (!ok && (tup = systable_getnext(scan)) != NULL)
	{
		TupleDesc	desc = RelationGetDescr(rel);
		bool		n1,
					n2;
		Oid			role = DatumGetObjectId(heap_getattr(tup, att_role, desc, &n1));
		Datum		nd = heap_getattr(tup, att_name, desc, &n2);
		char	   *cur;

		if (n1 || n2)
			continue;
		cur = GetUserNameFromId(role, true);
		if (cur == NULL || strcmp(cur, NameStr(*DatumGetName(nd))) != 0)
			continue;
		ok = has_privs_of_role(me, role);
	}
	systable_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(rel, AccessShareLock);
	return ok;
}

/* ------------------------------------------------------------------ */
/* The interface of hp_issue.h                                         */
/* ------------------------------------------------------------------ */

/* The active snapshot, when the memo may be keyed by it; else NULL */
static Snapshot
memo_snapshot(void)
{
	Snapshot	snap;

	if (!ActiveSnapshotSet())
		return NULL;
	snap = GetActiveSnapshot();
	if (snap->snapshot_type != SNAPSHOT_MVCC)
		return NULL;
	return snap;
}

/* Does the memo hold name for the current user under snap? */
static bool
memo_hit(const char *name, Snapshot snap)
{
	return memo.valid && snap != NULL &&
		memo.snap == snap &&
		memo.lxid == MyProc->lxid &&
		memo.xmin == snap->xmin && memo.xmax == snap->xmax &&
		memo.curcid == snap->curcid &&
		memo.xcnt == snap->xcnt && memo.subxcnt == snap->subxcnt &&
		memo.suboverflowed == snap->suboverflowed &&
		memo.recovery == snap->takenDuringRecovery &&
		memo.whenTaken == snap->whenTaken &&
		(snap->xcnt == 0 ||
		 memcmp(memo.xip, snap->xip, snap->xcnt * sizeof(TransactionId)) == 0) &&
		(snap->subxcnt <= 0 ||
		 memcmp(memo.subxip, snap->subxip, snap->subxcnt * sizeof(TransactionId)) == 0) &&
		memo.stmt == hp_statement_count &&
		memo.user == GetUserId() &&
		strcmp(memo.name, name) == 0;
}

/* Remember what the full path found for s under snap */
static void
memo_fill(const HpSigner *s, Snapshot snap)
{
	MemoryContext old;
	uint8	   *b;

	memo.valid = false;
	if (snap == NULL)
		return;
	MemoryContextReset(memo_cxt);
	old = MemoryContextSwitchTo(memo_cxt);
	memo.name = pstrdup(s->info.name);
	memo.info = s->info;
	memo.info.name = memo.name;
	b = palloc(s->info.kid_len + s->info.certificate_len);
	memcpy(b, s->info.kid, s->info.kid_len);
	memcpy(b + s->info.kid_len, s->info.certificate, s->info.certificate_len);
	memo.info.kid = b;
	memo.info.certificate = b + s->info.kid_len;
	memo.key_ref = pstrdup(s->key_ref);
	memo.stmt = hp_statement_count;
	memo.xcnt = snap->xcnt;
	memo.xip = snap->xcnt > 0 ? palloc(snap->xcnt * sizeof(TransactionId)) : NULL;
	if (snap->xcnt > 0)
		memcpy(memo.xip, snap->xip, snap->xcnt * sizeof(TransactionId));
	memo.subxcnt = snap->subxcnt;
	memo.subxip = snap->subxcnt > 0 ? palloc(snap->subxcnt * sizeof(TransactionId)) : NULL;
	if (snap->subxcnt > 0)
		memcpy(memo.subxip, snap->subxip, snap->subxcnt * sizeof(TransactionId));
	memo.suboverflowed = snap->suboverflowed;
	memo.recovery = snap->takenDuringRecovery;
	memo.whenTaken = snap->whenTaken;
	MemoryContextSwitchTo(old);
	memo.user = GetUserId();
	memo.lxid = MyProc->lxid;
	memo.snap = snap;
	memo.xmin = snap->xmin;
	memo.xmax = snap->xmax;
	memo.curcid = snap->curcid;
	memo.key_relid = hp_signing_key_relid();
	memo.grant_relid = hp_extension_relation_oid("signing_grant");
	memo.ck = s->ck;
	memo.file_checked = GetCurrentTimestamp();
	memo.valid = true;
}

/* open_private for s; on an error the key is loaded afresh next time */
static void
signer_private(HpSigner *s, const char *name, bool recheck)
{
	PG_TRY();
	{
		open_private(s->ck, name, s->key_ref, s->info.alg,
					 s->info.certificate, s->info.certificate_len, recheck);
	}
	PG_CATCH();
	{
		cached_key_clear(s->ck);
		memo_forget();
		PG_RE_THROW();
	}
	PG_END_TRY();
}

HpSigner *
hp_signer_open(const char *name)
{
	HpSigner   *s = palloc0(sizeof(HpSigner));
	Snapshot	snap;
	bool		recheck = true;

	/* the grant is read under the latest snapshot, which a worker cannot take */
	if (IsInParallelMode())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
				 errmsg("key: a signing key cannot be opened during a parallel operation")));
	keys_init();
	snap = memo_snapshot();
	if (memo_hit(name, snap))
	{
		TimestampTz now = GetCurrentTimestamp();

		/*
		 * The row and the grant as read earlier in this statement; the
		 * private key as loaded then, its file checked again once a second
		 */
		uint8	   *b = palloc(memo.info.kid_len + memo.info.certificate_len);

		s->info = memo.info;
		s->info.name = pstrdup(memo.name);
		memcpy(b, memo.info.kid, memo.info.kid_len);
		memcpy(b + memo.info.kid_len, memo.info.certificate, memo.info.certificate_len);
		s->info.kid = b;
		s->info.certificate = b + memo.info.kid_len;
		s->key_ref = pstrdup(memo.key_ref);
		s->ck = memo.ck;
		recheck = now - memo.file_checked >= HP_FILE_RECHECK_USECS;
		if (recheck)
			memo.file_checked = now;
	}
	else
	{
		if (!read_key_row(name, s))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("key: signing key \"%s\" does not exist", hp_key_label(name))));
		if (!may_sign(s->info.keyid))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("key: permission denied to sign with key \"%s\"", hp_key_label(name)),
					 errhint("A superuser grants it with health_pass.grant_signing(role, '%s').", hp_key_label(name))));
		s->ck = cache_entry(s->info.keyid, s->key_ref, s->info.certificate, s->info.certificate_len);
		memo_forget();
	}
	signer_private(s, name, recheck);
	if (!memo.valid)
		memo_fill(s, snap);
	return s;
}

const HpSignerInfo *
hp_signer_info(const HpSigner *s)
{
	return &s->info;
}

void
hp_signer_sign(HpSigner *s, const uint8 *tbs, size_t tbs_len,
			   uint8 *sig, size_t *sig_len)
{
	uint8		digest[32];

	sha256_of(tbs, tbs_len, NULL, 0, NULL, 0, digest);
	sign_digest(s->ck, s->info.name, s->info.alg, tbs, tbs_len, digest, sig, sig_len);
}

void
hp_signer_close(HpSigner *s)
{
	if (s == NULL)
		return;
	if (s->key_ref)
		pfree(s->key_ref);
	pfree(s);
}

/* ------------------------------------------------------------------ */
/* SQL functions                                                       */
/* ------------------------------------------------------------------ */

PG_FUNCTION_INFO_V1(hp_signing_key_alg);
/* _signing_key_alg(certificate bytea) -> 'ES256' | 'PS256', or an error */
Datum
hp_signing_key_alg(PG_FUNCTION_ARGS)
{
	bytea	   *der = PG_GETARG_BYTEA_PP(0);
	int			alg = certificate_alg((const uint8 *) VARDATA_ANY(der), VARSIZE_ANY_EXHDR(der));

	PG_RETURN_TEXT_P(cstring_to_text(alg == HP_ALG_PS256 ? "PS256" : "ES256"));
}

PG_FUNCTION_INFO_V1(hp_signing_key_ref);
/* _signing_key_ref(key_ref text) -> key_ref, after checking its form */
Datum
hp_signing_key_ref(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);
	char	   *ref = text_to_cstring(t);

	check_key_ref(ref);
	PG_RETURN_TEXT_P(t);
}

PG_FUNCTION_INFO_V1(hp_signing_key_prove);
/*
 * _signing_key_prove(name text, certificate bytea, key_ref text): superuser
 * only; the private key must be reachable and be the certificate's
 */
Datum
hp_signing_key_prove(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	bytea	   *der = PG_GETARG_BYTEA_PP(1);
	char	   *ref = text_to_cstring(PG_GETARG_TEXT_PP(2));
	CachedKey	ck;
	int			alg;

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("key: only a superuser may add a signing key")));
	keys_init();
	check_key_ref(ref);
	alg = certificate_alg((const uint8 *) VARDATA_ANY(der), VARSIZE_ANY_EXHDR(der));
	memset(&ck, 0, sizeof(ck));
	PG_TRY();
	{
		open_private(&ck, name, ref, alg,
					 (const uint8 *) VARDATA_ANY(der), VARSIZE_ANY_EXHDR(der), true);
	}
	PG_FINALLY();
	{
		cached_key_clear(&ck);
	}
	PG_END_TRY();
	PG_RETURN_VOID();
}

/*
 * A COSE signing input: a CBOR array whose first element is one of COSE's
 * signature context strings (RFC 9052 §4.4, RFC 9338), in the canonical
 * heads every verifier encodes them with.  A signature over one is a
 * signature of a COSE message, a pass among them: those are made only by
 * issue(), which checks the pass and writes its audit record.
 */
static bool
is_cose_signing_input(const uint8 *d, size_t len)
{
	static const char *const contexts[] = {
		"Signature", "Signature1", "CounterSignature", "CounterSignature0",
		"CounterSignatureV2", "CounterSignature0V2"
	};
	size_t		tlen;

	/* an array of at most 23 elements, then a text string of at most 23 bytes */
	if (len < 2 || (d[0] & 0xE0) != 0x80 || d[0] > 0x97 ||
		(d[1] & 0xE0) != 0x60 || d[1] > 0x77)
		return false;
	tlen = d[1] & 0x1F;
	if (len < 2 + tlen)
		return false;
	for (int i = 0; i < (int) lengthof(contexts); i++)
		if (strlen(contexts[i]) == tlen && memcmp(d + 2, contexts[i], tlen) == 0)
			return true;
	return false;
}

PG_FUNCTION_INFO_V1(hp_signing_key_sign);
/*
 * _sign(key text, data bytea) -> bytea: the COSE signature of SHA-256(data)
 * with the key.  Superusers only, and never over a COSE signing input
 * (is_cose_signing_input): that would be a pass signed without issue()'s
 * checks and audit record.  Tests and benchmarks.
 */
Datum
hp_signing_key_sign(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	bytea	   *data = PG_GETARG_BYTEA_PP(1);
	HpSigner   *s;
	uint8		sig[HP_MAX_SIG];
	size_t		sig_len = 0;

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("sign: only a superuser may sign raw bytes")));
	if (is_cose_signing_input((const uint8 *) VARDATA_ANY(data), VARSIZE_ANY_EXHDR(data)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("sign: _sign() does not sign a COSE signing input (a Sig_structure)"),
				 errdetail("Passes are signed only by issue() and issue_batch(), which check them and write their audit records.")));
	s = hp_signer_open(name);

	hp_signer_sign(s, (const uint8 *) VARDATA_ANY(data), VARSIZE_ANY_EXHDR(data), sig, &sig_len);
	hp_signer_close(s);
	PG_RETURN_BYTEA_P(hp_bytea(sig, sig_len));
}

PG_FUNCTION_INFO_V1(hp_signer_check);
/*
 * signer_check(key text) -> bytea: open the key as issue() does (the
 * caller's grant, the private key reachable and the certificate's) and
 * return its kid; raises otherwise.  Signs nothing for the caller.
 */
Datum
hp_signer_check(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	HpSigner   *s = hp_signer_open(name);
	bytea	   *kid = hp_bytea(s->info.kid, s->info.kid_len);

	hp_signer_close(s);
	PG_RETURN_BYTEA_P(kid);
}
