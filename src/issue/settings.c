/*
 * settings.c
 *    The key store's settings, all superuser-only (GUC_SUPERUSER_ONLY: not in
 *    pg_settings or SHOW for others) and read from the server's
 *    configuration (PGC_SIGHUP):
 *
 *      health_pass.key_directory    where file: keys and the PIN file live
 *      health_pass.pkcs11_module    the PKCS#11 module (a shared library)
 *      health_pass.pkcs11_pin_file  a file under key_directory holding the
 *                                   token's user PIN
 *
 *    There is deliberately no setting holding a PIN: a reload logs every
 *    changed value ("parameter ... changed to ..."), and postgresql.auto.conf
 *    and pg_file_settings would hold it (docs/design/signing.md).
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/guc.h"

#include "issue/hp_signing.h"

char	   *hp_key_directory = NULL;
char	   *hp_pkcs11_module = NULL;
char	   *hp_pkcs11_pin_file = NULL;

void
hp_issue_init(void)
{
	DefineCustomStringVariable("health_pass.key_directory",
							   "Directory of file: signing keys and the PKCS#11 PIN file.",
							   "Absolute path; owned by the server's OS user, not writable by others.",
							   &hp_key_directory, "", PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY, NULL, NULL, NULL);
	DefineCustomStringVariable("health_pass.pkcs11_module",
							   "PKCS#11 module that pkcs11: signing keys are reached through.",
							   NULL,
							   &hp_pkcs11_module, "", PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY, NULL, NULL, NULL);
	DefineCustomStringVariable("health_pass.pkcs11_pin_file",
							   "File under health_pass.key_directory holding the PKCS#11 user PIN.",
							   "Empty: no login (tokens that need none).",
							   &hp_pkcs11_pin_file, "", PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY, NULL, NULL, NULL);
	/* wrong-PIN marks shared by every backend (pinmark.c) */
	if (process_shared_preload_libraries_in_progress)
		hp_pin_marks_install();
}
