-- health_pass 0.9.0 -> 0.10.0 (issue 15): audited reads on hot standbys, a
-- chain that survives failover, and an audit log that answers in
-- milliseconds at a billion records.  The same objects as in
-- sql/health_pass.sql (test/t/010_install_matches_update.pl keeps them equal).
\echo Use "ALTER EXTENSION health_pass UPDATE TO '0.10.0'" to load this file. \quit

-- A. Standbys and failover (issue 15 §1-2) ===================================

-- B. The audit log at scale: subject index, checkpoints, retention (§3-5) ====
