# health_pass: PGXS build
MODULE_big = health_pass
OBJS = src/health_pass.o \
       $(patsubst %.c,%.o,$(wildcard src/common/*.c src/codec/*.c src/pass/*.c \
                                     src/verify/*.c src/audit/*.c src/access/*.c \
                                     src/issue/*.c))
EXTENSION = health_pass
# The install script of the current version is built from sql/health_pass.sql
# (version: default_version in health_pass.control); the 0.1.0 script and the
# upgrade scripts stay for CREATE EXTENSION ... VERSION and ALTER EXTENSION
# UPDATE.  test/t/010_install_matches_update.pl keeps both paths equal.
EXTVERSION := $(shell sed -n "s/^[[:space:]]*default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" $(EXTENSION).control)
ifeq ($(EXTVERSION),)
$(error default_version not found in $(EXTENSION).control)
endif
DATA_built = sql/$(EXTENSION)--$(EXTVERSION).sql
DATA = sql/$(EXTENSION)--0.1.0.sql $(wildcard sql/$(EXTENSION)--*--*.sql)
REGRESS = type reading trust check inspect hostile access gate ddl redteam quota records writer upgrade denials probes signing revocation issue keyindex anchor
# make installcheck (after make install) needs no running server: pg_regress and
# pg_isolation_regress each start a temporary instance with test/regress.conf, then
# prove runs the TAP scripts (PostgreSQL::Test::Cluster starts its own servers).
# Outputs: test/output/, test/isolation/output/, tmp_check/ (all gitignored).
REGRESS_OPTS = --inputdir=test --outputdir=test/output \
               --temp-instance=test/output/tmp_instance --temp-config=test/regress.conf \
               --encoding=UTF8 --no-locale
ISOLATION = recheck policy_race redteam writer revocation revocation_types keyindex probes parallel_policy
ISOLATION_OPTS = --inputdir=test/isolation --outputdir=test/isolation/output \
                 --temp-instance=test/isolation/output/tmp_instance \
                 --temp-config=test/regress.conf --encoding=UTF8 --no-locale
TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl
EXTRA_CLEAN = test/output test/isolation/output

PG_CPPFLAGS = -I$(srcdir)/src -Wall -Wextra -Werror -Wno-unused-parameter \
              -Wno-missing-field-initializers -Wno-sign-compare
# the PKCS#11 header (p11-kit/pkcs11.h, libp11-kit-dev); modules are dlopen'ed
PG_CPPFLAGS += $(shell pkg-config --cflags p11-kit-1 2>/dev/null || echo -I/usr/include/p11-kit-1)
# libpq: a standby ships its audit records to the primary (src/audit/ship.c)
PG_CPPFLAGS += -I$(shell $(PG_CONFIG) --includedir)
SHLIB_LINK = -lcrypto -lz -ldl -lpq

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

sql/$(EXTENSION)--$(EXTVERSION).sql: sql/$(EXTENSION).sql $(EXTENSION).control
	cp $< $@

.PHONY: bench fuzz
bench:
	bash test/bench/run.sh
	bash test/bench/issue.sh
fuzz:
	bash test/fuzz/run.sh

# PGXS tracks no header dependencies here: rebuild everything a header changes
$(OBJS): $(wildcard src/*/*.h)
