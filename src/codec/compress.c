/*
 * compress.c
 *    Bounded zlib inflation (input) and deflation (output) of COSE bytes.
 */
#include <string.h>
#include <zlib.h>

#include "codec/hp_codec.h"

/*
 * Inflate a complete zlib stream into out, at most cap bytes.  Stops as soon
 * as the output would exceed cap (zlib bombs), and refuses raw (uncompressed)
 * data, truncated streams and bytes after the end of the stream.  The
 * inflate state (about 40 KiB) is kept for the process and reset per call,
 * so no allocation happens per pass.
 */
bool
hp_inflate(const uint8_t *in, size_t len, uint8_t *out, size_t cap,
		   size_t *outlen, HpErr *err)
{
	static z_stream zs;			/* reused: inflateReset per call */
	static bool zs_ready = false;
	int			rc;

	if (len < 2 || (in[0] & 0x0F) != 8 || ((in[0] << 8) | in[1]) % 31 != 0)
	{
		hp_seterr(err, HP_STAGE_ZLIB, "data is not a zlib stream");
		return false;
	}
	if (!zs_ready)
	{
		memset(&zs, 0, sizeof(zs));
		if (inflateInit(&zs) != Z_OK)
		{
			hp_seterr(err, HP_STAGE_ZLIB, "could not initialise inflation");
			return false;
		}
		zs_ready = true;
	}
	else if (inflateReset(&zs) != Z_OK)
	{
		hp_seterr(err, HP_STAGE_ZLIB, "could not reset inflation");
		return false;
	}
	zs.next_in = (Bytef *) in;
	zs.avail_in = (uInt) len;
	zs.next_out = out;
	zs.avail_out = (uInt) cap;
	rc = inflate(&zs, Z_FINISH);
	*outlen = zs.total_out;

	if (rc == Z_STREAM_END)
	{
		if (zs.avail_in != 0)
		{
			hp_seterr(err, HP_STAGE_ZLIB, "%u bytes after the end of the stream",
					  zs.avail_in);
			return false;
		}
		return true;
	}
	if (rc == Z_BUF_ERROR && zs.avail_out == 0)
		hp_seterr(err, HP_STAGE_ZLIB, "inflated size exceeds %zu bytes", cap);
	else if (rc == Z_BUF_ERROR)
		hp_seterr(err, HP_STAGE_ZLIB, "stream is truncated");
	else
		hp_seterr(err, HP_STAGE_ZLIB, "stream is corrupt");
	return false;
}

/* Worst-case deflated size of len bytes */
size_t
hp_deflate_bound(size_t len)
{
	return compressBound((uLong) len);
}

/* Deflate at the best compression into out (hp_deflate_bound bytes) */
bool
hp_deflate(const uint8_t *in, size_t len, uint8_t *out, size_t *outlen)
{
	uLongf		dlen = compressBound((uLong) len);

	if (compress2(out, &dlen, in, (uLong) len, Z_BEST_COMPRESSION) != Z_OK)
		return false;
	*outlen = dlen;
	return true;
}
