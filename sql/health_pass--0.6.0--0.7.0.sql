/* health_pass 0.6.0 -> 0.7.0: quotas and the audit writer stand up to crashes, floods and odd data */

\echo Use "ALTER EXTENSION health_pass UPDATE TO '0.7.0'" to load this file. \quit

-- The server must run the 0.7.0 library (restart after installing it).
