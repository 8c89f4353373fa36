/*
 * error.c
 *    The error helper every decoder of the codec layer shares: an HpErr
 *    names the stage that failed and says why, without allocating or
 *    raising (hp_codec.h).
 */
#include <stdarg.h>
#include <stdio.h>

#include "codec/hp_codec.h"

/* Name of a stage, as used in error messages and by inspect() */
const char *
hp_stage_name(HpStage stage)
{
	switch (stage)
	{
		case HP_STAGE_PREFIX: return "prefix";
		case HP_STAGE_BASE45: return "base45";
		case HP_STAGE_ZLIB: return "zlib";
		case HP_STAGE_COSE: return "cose";
		case HP_STAGE_CWT: return "cwt";
		case HP_STAGE_HCERT: return "hcert";
		default: return NULL;
	}
}

/* Set err to a formatted message for stage */
void
hp_seterr(HpErr *err, HpStage stage, const char *fmt,...)
{
	va_list		ap;

	err->stage = stage;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
}
