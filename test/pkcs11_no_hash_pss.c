/*
 * pkcs11_no_hash_pss.c: a PKCS#11 module for test/t/071 that passes every
 * call to another module (REAL_MODULE, given when it is compiled: SoftHSM2)
 * but has no CKM_SHA256_RSA_PKCS_PSS, the way some HSMs have only the raw
 * CKM_RSA_PKCS_PSS over a digest: C_SignInit with it answers
 * CKR_MECHANISM_INVALID.  Each C_SignInit with an RSA-PSS mechanism writes
 * one line to stderr (the server log), which the test counts:
 *   pkcs11_no_hash_pss: refused CKM_SHA256_RSA_PKCS_PSS
 *   pkcs11_no_hash_pss: CKM_RSA_PKCS_PSS salt 32
 */
#include <dlfcn.h>
#include <stdio.h>

#define CRYPTOKI_GNU 1
#include <p11-kit/pkcs11.h>

#ifndef REAL_MODULE
#error "compile with -DREAL_MODULE=\"/path/to/module.so\""
#endif

static struct ck_function_list *inner;	/* the real module's functions */
static struct ck_function_list outer;	/* those, C_SignInit replaced */

static ck_rv_t
sign_init(ck_session_handle_t session, struct ck_mechanism *mech, ck_object_handle_t key)
{
	if (mech != NULL && mech->mechanism == CKM_SHA256_RSA_PKCS_PSS)
	{
		fprintf(stderr, "pkcs11_no_hash_pss: refused CKM_SHA256_RSA_PKCS_PSS\n");
		return CKR_MECHANISM_INVALID;
	}
	if (mech != NULL && mech->mechanism == CKM_RSA_PKCS_PSS)
	{
		const struct ck_rsa_pkcs_pss_params *p = mech->parameter;

		fprintf(stderr, "pkcs11_no_hash_pss: CKM_RSA_PKCS_PSS salt %lu\n",
				p != NULL && mech->parameter_len == sizeof(*p) ? p->s_len : 0UL);
	}
	return inner->C_SignInit(session, mech, key);
}

ck_rv_t		C_GetFunctionList(struct ck_function_list **list);

ck_rv_t
C_GetFunctionList(struct ck_function_list **list)
{
	if (list == NULL)
		return CKR_ARGUMENTS_BAD;
	if (inner == NULL)
	{
		void	   *lib = dlopen(REAL_MODULE, RTLD_NOW | RTLD_LOCAL);
		ck_rv_t		(*get) (struct ck_function_list **);

		if (lib == NULL)
			return CKR_GENERAL_ERROR;
		*(void **) &get = dlsym(lib, "C_GetFunctionList");
		if (get == NULL || get(&inner) != CKR_OK || inner == NULL)
			return CKR_GENERAL_ERROR;
		outer = *inner;
		outer.C_SignInit = sign_init;
	}
	*list = &outer;
	return CKR_OK;
}
