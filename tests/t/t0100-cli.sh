#!/bin/sh
# t0100-cli.sh — the command line: init, --version, help, user add/list/passwd/disable/enable,
# $SANAD_DATA, and the exit codes (0 done, 1 failed, 2 usage) with messages that say what failed.
. "$(dirname "$0")/lib.sh"

# ---- version, help, unknown commands -------------------------------------------------------------
sanad --version
expect_rc 0 "--version"
expect_output out '^sanad [0-9]+\.[0-9]+\.[0-9]+' "--version prints 'sanad X.Y.Z'"

sanad help
expect_rc 0 "help"
for c in init serve user audit help; do
  expect_output out "^  $c " "help lists '$c'"
done

run_cmd "$SANAD_BIN"
expect_rc 2 "no command at all is a usage error"
check "no command prints the usage" grep -q 'usage: sanad' "$TMP/.out" "$TMP/.err"

sanad frobnicate
expect_rc 2 "unknown command"
expect_output err "'frobnicate' is not a sanad command" "unknown command is named in the message"

for c in init serve user audit; do
  sanad help "$c"
  expect_rc 0 "help $c"
  expect_output out "usage: sanad $c" "help $c prints its usage"
done
sanad help frobnicate
expect_rc 2 "help for an unknown command"

sanad help roles
expect_rc 0 "help roles"
expect_output out '^permission +admin +clinician +registrar +analyst +viewer *$' "help roles: header names the five roles"
expect_output out '^users\.manage +yes +- +- +- +- ' "help roles: only admins manage users"
expect_output out '^session +yes +yes +yes +yes +yes ' "help roles: every role has a session"
expect_output out '^audit\.read +yes +- +- +- +- ' "help roles: only admins read the audit log"

# ---- init ------------------------------------------------------------------------------------------
N1=$TMP/n1
sanad init --data "$N1" --site "Clinic One" --locales en,ar
expect_rc 0 "init with a generated password"
expect_output out "^Created Sanad node [0-9a-f-]{36} in $N1\$" "init names the node and directory"
expect_output out '^Site: +Clinic One$' "init names the first site"
expect_output out '^Admin username: +admin$' "init names the admin"
expect_output out '^Admin password: +[^ ]{10,}$' "init prints the generated admin password"
GEN_PW=$(sed -n 's/^Admin password: *//p' "$TMP/.out")
check "data dir is mode 0700" test "$(stat -c %a "$N1")" = 700
check "data dir holds sanad.db" test -f "$N1/sanad.db"
check "locales stored" test "$(sqlite3 "$N1/sanad.db" "select value from meta where key='locales'")" = en,ar

touch "$TMP/n1-marker"
sanad init --data "$N1"
expect_rc 1 "init refuses an existing non-empty dir"
expect_output err "'$N1' already exists and is not empty" "refusal names the directory"
check "refused init left the old database alone" \
  test "$(sqlite3 "$N1/sanad.db" "select count(*) from users")" = 1

mkdir -m 755 "$TMP/empty"
write_file "$TMP/pw-ok" 'correct horse battery'
sanad init --data "$TMP/empty" --admin-password-file "$TMP/pw-ok"
expect_rc 0 "init accepts an existing empty dir"
check "existing empty dir is restricted to 0700" test "$(stat -c %a "$TMP/empty")" = 700
expect_no_output out 'Admin password' "no password printed when it came from a file"

write_file "$TMP/pw-short" 'short'
sanad init --data "$TMP/weak" --admin-password-file "$TMP/pw-short"
expect_rc 1 "init refuses a weak password"
expect_output err 'at least 10 characters' "weak password message says why"
check "refused init leaves no directory behind" test ! -e "$TMP/weak"

write_file "$TMP/pw-same" 'administrator'
sanad init --data "$TMP/weak2" --admin administrator --admin-password-file "$TMP/pw-same"
expect_rc 1 "init refuses password == username"
expect_output err 'must not be the username' "password == username message"

sanad init --data "$TMP/nopw" --admin-password-file "$TMP/does-not-exist"
expect_rc 1 "init with a missing password file"
expect_output err "cannot read password file '$TMP/does-not-exist'" "missing password file is named"

for bad in EN e en,,ar 'en;ar' en,english ''; do
  sanad init --data "$TMP/loc" --locales "$bad" --admin-password-file "$TMP/pw-ok"
  expect_rc 2 "init --locales '$bad' is a usage error"
done
expect_output err 'locales' "bad --locales message names the option"
check "bad --locales created nothing" test ! -e "$TMP/loc"

sanad init --data "$TMP/badadmin" --admin 'Bad Name!' --admin-password-file "$TMP/pw-ok"
expect_rc 1 "init refuses an invalid admin username"
sanad init --data "$TMP/x" --bogus
expect_rc 2 "init with an unknown option"
sanad init --data "$TMP/x" extra-arg
expect_rc 2 "init with a stray argument"

# ---- SANAD_DATA ------------------------------------------------------------------------------------
sanad user list
expect_rc 2 "no --data and no SANAD_DATA"
expect_output err 'no data directory' "missing data dir message"

SANAD_DATA=$N1 run_cmd "$SANAD_BIN" user list
expect_rc 0 "SANAD_DATA is the default --data"
expect_output out '^admin +admin +active +Administrator$' "user list via SANAD_DATA shows the admin"

# ---- user add/list/passwd/disable/enable -----------------------------------------------------------
write_file "$TMP/pw-alice" 'alice-password-1'
sanad user add --data "$N1" --username alice --role clinician --full-name 'Alice Haddad' --password-file "$TMP/pw-alice"
expect_rc 0 "user add alice"
expect_output out '^alice created \(clinician\)$' "user add reports the account"
expect_no_output out 'Password:' "user add with a file prints no password"

sanad user add --data "$N1" --username Bob --role viewer
expect_rc 0 "user add with a generated password"
expect_output out '^bob created \(viewer\)$' "usernames are normalised to lower case"
expect_output out '^Password: [^ ]{10,}$' "generated password is printed once"
BOB_PW=$(sed -n 's/^Password: //p' "$TMP/.out")

sanad user add --data "$N1" --username alice --role viewer --password-file "$TMP/pw-ok"
expect_rc 1 "user add refuses a taken username"
expect_output err "username 'alice' is already taken" "taken username is named"

sanad user add --data "$N1" --username carol --role chef --password-file "$TMP/pw-ok"
expect_rc 1 "user add refuses an unknown role"
expect_output err 'role must be one of' "unknown role message lists the roles"

sanad user add --data "$N1" --username carol --password-file "$TMP/pw-ok"
expect_rc 2 "user add without --role"
sanad user add --data "$N1" --role viewer --password-file "$TMP/pw-ok"
expect_rc 2 "user add without --username"
sanad user add --data "$N1" --username 'c d' --role viewer --password-file "$TMP/pw-ok"
expect_rc 1 "user add refuses an invalid username"
expect_output err 'username' "invalid username message"
sanad user add --data "$N1" --username carol --role viewer --password-file "$TMP/pw-short"
expect_rc 1 "user add refuses a weak password"
sanad user frob --data "$N1" --username alice
expect_rc 2 "unknown user subcommand"
run_cmd "$SANAD_BIN" user
expect_rc 2 "user with no subcommand"

sanad user list --data "$N1"
expect_rc 0 "user list"
expect_output out '^USERNAME +ROLE +STATUS +FULL NAME$' "user list header"
expect_output out '^alice +clinician +active +Alice Haddad$' "user list shows alice"
expect_output out '^bob +viewer +active' "user list shows bob"
check "user list has exactly three accounts" test "$(tail -n +2 "$TMP/.out" | wc -l)" = 3

write_file "$TMP/pw-alice2" 'alice-password-2'
sanad user passwd --data "$N1" --username alice --password-file "$TMP/pw-alice2"
expect_rc 0 "user passwd"
expect_output out '^alice password changed \(clinician\)$' "user passwd reports the change"
sanad user passwd --data "$N1" --username alice --password-file "$TMP/pw-short"
expect_rc 1 "user passwd refuses a weak password"
sanad user passwd --data "$N1" --username nobody --password-file "$TMP/pw-ok"
expect_rc 1 "user passwd on an unknown user"
expect_output err "no user named 'nobody'" "unknown user is named"

sanad user disable --data "$N1" --username bob
expect_rc 0 "user disable"
expect_output out '^bob disabled \(viewer\)$' "user disable reports the change"
sanad user list --data "$N1"
expect_output out '^bob +viewer +disabled' "user list shows bob disabled"

sanad user disable --data "$N1" --username admin
expect_rc 1 "the last admin cannot be disabled"
expect_output err 'last active admin' "last admin message"
sanad user disable --data "$N1" --username ghost
expect_rc 1 "user disable on an unknown user"
sanad user disable --data "$N1"
expect_rc 2 "user disable without --username"

# ---- the accounts really work: sign in through a server on the same data dir ----------------------
start_node "$N1"
T=$(login admin "$GEN_PW")
check "the generated admin password signs in" test -n "$T"
api POST /api/v1/session '{"username":"alice","password":"alice-password-1"}'
expect_error 401 invalid_credentials "alice's old password no longer works"
T=$(login alice alice-password-2)
check "alice's new password signs in" test -n "$T"
api POST /api/v1/session "$(jq -cn --arg p "$BOB_PW" '{username:"bob",password:$p}')"
expect_error 401 invalid_credentials "disabled bob cannot sign in"

sanad user enable --data "$N1" --username bob
expect_rc 0 "user enable (while the node is serving)"
expect_output out '^bob enabled \(viewer\)$' "user enable reports the change"
T=$(login bob "$BOB_PW")
check "re-enabled bob signs in with his generated password" test -n "$T"
stop_node

# ---- serve without a database ----------------------------------------------------------------------
sanad serve --data "$TMP/missing" --listen 127.0.0.1:0
expect_rc 1 "serve on a missing data dir fails"
expect_output err "no Sanad database in '$TMP/missing'" "serve names the missing data dir"
expect_output err 'sanad init' "serve says how to create one"
check "serve did not create the missing dir" test ! -e "$TMP/missing"

sanad serve --data "$N1" --listen nowhere
expect_rc_nonzero "serve --listen without a port"
expect_output err 'listen' "bad --listen message names the option"
sanad serve --data "$N1" --threads 0
expect_rc 2 "serve --threads 0 is a usage error"

# ---- audit -----------------------------------------------------------------------------------------
sanad audit verify --data "$N1"
expect_rc 0 "audit verify on a fresh node"
expect_output out '^audit chain intact: [0-9]+ entries$' "audit verify reports the count"
sanad audit frob --data "$N1"
expect_rc 2 "unknown audit subcommand"

done_testing
