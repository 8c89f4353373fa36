# health_pass: PGXS build
MODULE_big = health_pass
OBJS = src/health_pass.o \
       $(patsubst %.c,%.o,$(wildcard src/common/*.c src/codec/*.c src/pass/*.c \
                                     src/verify/*.c src/audit/*.c src/access/*.c))
EXTENSION = health_pass
DATA = sql/health_pass--0.1.0.sql sql/health_pass--0.1.0--0.2.0.sql \
       sql/health_pass--0.2.0--0.3.0.sql sql/health_pass--0.3.0--0.4.0.sql \
       sql/health_pass--0.4.0--0.5.0.sql sql/health_pass--0.5.0--0.6.0.sql \
       sql/health_pass--0.6.0--0.7.0.sql
REGRESS = type reading trust check inspect hostile access gate ddl redteam quota records writer upgrade denials
REGRESS_OPTS = --inputdir=.
ISOLATION = recheck policy_race redteam writer
ISOLATION_OPTS = --inputdir=test/isolation --outputdir=test/isolation/output

PG_CPPFLAGS = -I$(srcdir)/src -Wall -Wextra -Werror -Wno-unused-parameter \
              -Wno-missing-field-initializers -Wno-sign-compare
SHLIB_LINK = -lcrypto -lz

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

.PHONY: bench fuzz
bench:
	bash test/bench/run.sh
fuzz:
	bash test/fuzz/run.sh

# PGXS tracks no header dependencies here: rebuild everything a header changes
$(OBJS): $(wildcard src/*/*.h)
