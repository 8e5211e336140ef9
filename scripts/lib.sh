# Shared shell functions for scripts/demo and scripts/test. Source it; do not run it.
# Everything here must work as root on a fresh Debian 12 machine.

STJARNA_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
APT_OPTS=(-y -q -o DPkg::Lock::Timeout=600 --no-install-recommends)

# A step, with the minutes and seconds since the first script started (CI's time is limited; a
# script that another runs counts from the same start); bold on a terminal only.
export STJARNA_STARTED=${STJARNA_STARTED:-$(date +%s)}
log() {
  local at s=$(($(date +%s) - STJARNA_STARTED))
  at=$(printf '%d:%02d' $((s / 60)) $((s % 60)))
  if [ -t 2 ]; then printf '\033[1m==> [%s] %s\033[0m\n' "$at" "$*" >&2; else printf '==> [%s] %s\n' "$at" "$*" >&2; fi
}
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

require_root() {
  [ "$(id -u)" = 0 ] || die "run this as root: Samba AD DC binds ports 389/636 and must run as root."
}

# ensure_packages PKG...: install the Debian packages that are not installed yet.
ensure_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -q -o DPkg::Lock::Timeout=600 update >/dev/null
  apt-get install "${APT_OPTS[@]}" "${missing[@]}" >/dev/null
}

# ensure_rust: a Rust toolchain recent enough for edition 2024 (Debian's own cargo is too old).
ensure_rust() {
  [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
  if command -v cargo >/dev/null 2>&1; then return 0; fi
  log "installing Rust with rustup"
  ensure_packages curl ca-certificates gcc libc6-dev
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c rustfmt,clippy
  . "$HOME/.cargo/env"
}

SAMBA_PACKAGES=(samba-ad-dc samba-ad-provision ldap-utils openssl iproute2)

# make_ca DIR IP: a throwaway CA and a server certificate for IP (rustls needs the subjectAltName).
make_ca() {
  local dir=$1 ip=$2
  mkdir -p "$dir"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=Stjarna Test CA" \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=dc1.example.test" \
    -keyout "$dir/dc.key" -out "$dir/dc.csr" 2>/dev/null
  printf 'subjectAltName=IP:%s,DNS:dc1.example.test\nextendedKeyUsage=serverAuth\n' "$ip" > "$dir/ext.cnf"
  openssl x509 -req -in "$dir/dc.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 3650 -extfile "$dir/ext.cnf" -out "$dir/dc.pem" 2>/dev/null
  chmod 600 "$dir/dc.key" "$dir/ca.key"
}

# issue_cert CADIR DIR IP NAME: a server certificate for IP and NAME in DIR, from the CA in CADIR
# (another DC of the same domain: one CA for the domain, as in AD).
issue_cert() {
  local ca=$1 dir=$2 ip=$3 name=$4
  mkdir -p "$dir"
  cp "$ca/ca.pem" "$dir/ca.pem"
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$name" -keyout "$dir/dc.key" -out "$dir/dc.csr" 2>/dev/null
  printf 'subjectAltName=IP:%s,DNS:%s\nextendedKeyUsage=serverAuth\n' "$ip" "$name" > "$dir/ext.cnf"
  openssl x509 -req -in "$dir/dc.csr" -CA "$ca/ca.pem" -CAkey "$ca/ca.key" -CAcreateserial \
    -days 3650 -extfile "$dir/ext.cnf" -out "$dir/dc.pem" 2>/dev/null
  chmod 600 "$dir/dc.key"
}

# smb_options DIR IP [SERVICES]: the options that keep a DC inside DIR and on IP.
smb_options() {
  local dir=$1 ip=$2 services=${3:-ldap, cldap, kdc, rpc}
  printf '%s\n' \
    "interfaces = $ip/8" "bind interfaces only = yes" \
    "server services = $services" \
    "log file = $dir/log/samba.log" "pid directory = $dir/run" "ncalrpc dir = $dir/run/ncalrpc" \
    "winbindd socket directory = $dir/run/winbindd" "ntp signd socket directory = $dir/run/ntp_signd" \
    "tls enabled = yes" "tls certfile = $dir/tls/dc.pem" "tls keyfile = $dir/tls/dc.key" \
    "tls cafile = $dir/tls/ca.pem" "old password allowed period = 0"
}

# provision_dc DIR IP ADMINPASS: a fresh EXAMPLE.TEST domain in DIR, listening on IP.
provision_dc() {
  local dir ip=$2 pass=$3 empty opts=()
  dir=$(realpath -m "$1")
  rm -rf "$dir"; mkdir -p "$dir/log" "$dir/run"
  empty=$(mktemp); 
  while IFS= read -r line; do
    case "$line" in tls*|"old password"*) ;; *) opts+=("--option=$line") ;; esac
  done < <(smb_options "$dir" "$ip")
  samba-tool domain provision -s "$empty" --targetdir="$dir" --server-role=dc --dns-backend=NONE \
    --use-rfc2307 --realm=EXAMPLE.TEST --domain=EXAMPLE --adminpass="$pass" \
    --host-name=dc1 --host-ip="$ip" "${opts[@]}" >"$dir/log/provision.log" 2>&1 \
    || { cat "$dir/log/provision.log" >&2; die "samba-tool domain provision failed"; }
  rm -f "$empty"
  make_ca "$dir/tls" "$ip"
  write_smb_conf "$dir" "$ip"
  samba-tool domain passwordsettings set -s "$dir/etc/smb.conf" --min-pwd-age=0 --history-length=5 \
    --account-lockout-threshold=5 --account-lockout-duration=30 --reset-account-lockout-after=30 \
    --complexity=on --min-pwd-length=8 >/dev/null
}

# write_smb_conf DIR IP [NAME [SERVICES]]: rewrite the [global] options for a DC copied to DIR and IP.
write_smb_conf() {
  local dir=$1 ip=$2 name=${3:-DC1} services=${4:-} conf=$1/etc/smb.conf
  {
    echo "[global]"
    echo "	netbios name = $name"
    echo "	realm = EXAMPLE.TEST"
    echo "	server role = active directory domain controller"
    echo "	workgroup = EXAMPLE"
    echo "	idmap_ldb:use rfc2307 = yes"
    echo "	private dir = $dir/private"
    echo "	lock dir = $dir"
    echo "	state directory = $dir/state"
    echo "	cache directory = $dir/cache"
    echo "	binddns dir = $dir/bind-dns"
    smb_options "$dir" "$ip" "$services" | sed 's/^/\t/'
    # A second DC pulls changes every second (Samba's default is 300 s).
    [ -n "$services" ] && printf "\tdreplsrv:periodic_interval = 1\n\tdreplsrv:periodic_startup_interval = 1\n"
    echo "[sysvol]"
    echo "	path = $dir/state/sysvol"
    echo "	read only = No"
    echo "[netlogon]"
    echo "	path = $dir/state/sysvol/example.test/scripts"
    echo "	read only = No"
  } > "$conf"
}

# free_address IP: stop whatever still listens on IP's LDAP ports (a DC left over from a killed run).
free_address() {
  local ip=$1 pids
  pids=$(ss -Hltnp "( sport = :636 or sport = :389 )" 2>/dev/null | grep -F "$ip:" | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u || true)
  [ -z "$pids" ] && return 0
  log "stopping a leftover process on $ip ($pids)"
  kill $pids 2>/dev/null || true
  sleep 1.5
  kill -9 $pids 2>/dev/null || true
}

# start_dc DIR IP ADMINPASS: run the DC in the background; its pid goes to DIR/samba.pid.
start_dc() {
  local dir ip=$2 pass=$3 i
  dir=$(realpath -m "$1")
  free_address "$ip"
  mkdir -p "$dir/run" "$dir/log"
  samba -F -M single --debug-stdout -s "$dir/etc/smb.conf" >"$dir/log/stdout.log" 2>&1 &
  echo $! > "$dir/samba.pid"
  for i in $(seq 1 150); do
    if LDAPTLS_CACERT="$dir/tls/ca.pem" ldapsearch -x -H "ldaps://$ip" -D "Administrator@example.test" \
        -w "$pass" -b '' -s base >/dev/null 2>&1; then
      return 0
    fi
    kill -0 "$(cat "$dir/samba.pid")" 2>/dev/null || { tail -20 "$dir/log/stdout.log" >&2; die "samba exited during start-up"; }
    sleep 0.2
  done
  die "the Samba AD DC on $ip did not answer LDAPS within 30 s (see $dir/log/stdout.log)"
}

stop_dc() {
  local dir=$1 pid
  [ -f "$dir/samba.pid" ] || return 0
  pid=$(cat "$dir/samba.pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$dir/samba.pid"
}

# copy_dc TEMPLATE DIR IP: a copy of a provisioned DC, moved to DIR and IP (about 50 ms).
copy_dc() {
  local template=$1 dir ip=$3
  dir=$(realpath -m "$2")
  rm -rf "$dir"; mkdir -p "$(dirname "$dir")"; cp -a "$template" "$dir"
  rm -f "$dir/samba.pid"; rm -rf "$dir/run" "$dir/log"; mkdir -p "$dir/run" "$dir/log"
  make_ca "$dir/tls" "$ip"
  write_smb_conf "$dir" "$ip"
}

# The directory's fixed parts, shared by the demo and the tests.
DC_ADMIN_PASSWORD='Stjarna-Admin-2026!'
DC_SVC_PASSWORD='Stjarna-Svc-2026!'
DC_BASE_DN='DC=example,DC=test'

# add_user DIR NAME PASSWORD GIVEN SURNAME [MOBILE]
add_user() {
  local dir=$1 name=$2 pass=$3 given=$4 surname=$5 mobile=${6:-}
  local args=(user create "$name" "$pass" --use-username-as-cn --given-name="$given" --surname="$surname"
    --mail-address="$name@example.test" -s "$dir/etc/smb.conf")
  [ -n "$mobile" ] && args+=(--telephone-number="$mobile")
  samba-tool "${args[@]}" >/dev/null
}

# provision_fixtures DIR: the service account, the admin groups and the demo users.
# Stjarna Admins <- IT-admins <- ida (admin membership through a nested group).
provision_fixtures() {
  local dir=$1 conf=$1/etc/smb.conf
  samba-tool user create svc-stjarna "$DC_SVC_PASSWORD" --use-username-as-cn \
    --description="Stjärna service account" -s "$conf" >/dev/null
  samba-tool user setexpiry svc-stjarna --noexpiry -s "$conf" >/dev/null
  # As in AD, only admins may read fine-grained password policies; the portal needs to, to show the
  # rules in force for a user. Grant the service account read access to the PSO container.
  local sid
  sid=$(samba-tool user show svc-stjarna --attributes=objectSid -s "$conf" | sed -n 's/^objectSid: //p')
  samba-tool dsacl set -s "$conf" -H "$dir/private/sam.ldb" \
    --objectdn="CN=Password Settings Container,CN=System,$DC_BASE_DN" --sddl="(A;CI;RPLCLORC;;;$sid)" >/dev/null
  # The least a reset portal needs on user objects (as LDAP Tool Box SSP documents): the "Reset
  # Password" extended right, and writing lockoutTime (unlock) and pwdLastSet (must change).
  local user_class=bf967aba-0de6-11d0-a285-00aa003049e2
  samba-tool dsacl set -s "$conf" -H "$dir/private/sam.ldb" --objectdn="$DC_BASE_DN" \
    --sddl="(OA;CIIO;CR;00299570-246d-11d0-a768-00aa006e0529;$user_class;$sid)(OA;CIIO;WP;28630ebf-41d5-11d1-a9c1-0000f80367c1;$user_class;$sid)(OA;CIIO;WP;bf967a0a-0de6-11d0-a285-00aa003049e2;$user_class;$sid)" >/dev/null
  samba-tool group add "Stjarna Admins" -s "$conf" >/dev/null
  samba-tool group add "IT-admins" -s "$conf" >/dev/null
  samba-tool group addmembers "Stjarna Admins" "IT-admins" -s "$conf" >/dev/null
  add_user "$dir" anna 'Sommar-2026!' Anna Andersson
  add_user "$dir" bertil 'Vinter-2026!' Bertil Berg
  add_user "$dir" ida 'Admin-2026!' Ida Isaksson
  samba-tool group addmembers "IT-admins" ida -s "$conf" >/dev/null
}

# dc_template: a provisioned DC with fixtures under target/, made once and reused until lib.sh changes.
dc_template() {
  local key dir
  key=$(sha256sum "$STJARNA_ROOT/scripts/lib.sh" | cut -c1-12)
  dir="$STJARNA_ROOT/target/samba/template-$key"
  if [ ! -f "$dir/.ready" ]; then
    log "provisioning a Samba AD DC template (once; about 20 s)"
    rm -rf "$STJARNA_ROOT"/target/samba/template-*
    provision_dc "$dir" 127.0.0.9 "$DC_ADMIN_PASSWORD"
    provision_fixtures "$dir"
    touch "$dir/.ready"
  fi
  echo "$dir"
}

PG_PACKAGES=(postgresql)
PG_PORT=55432

# pg_bin: the directory of Debian's PostgreSQL programs (initdb, pg_ctl).
pg_bin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$d" ] || die "PostgreSQL is not installed (apt-get install postgresql)"
  echo "$d"
}

# start_pg DIR PORT: a throwaway cluster of its own in DIR on 127.0.0.1:PORT (trust auth, loopback
# only), whatever the system cluster does. It speaks TLS too, with a certificate for 127.0.0.1 from
# a throwaway CA in DIR/tls/ca.pem (clients that ask for verify-full check it). initdb and pg_ctl
# refuse root: they run as postgres.
start_pg() {
  local dir=$1 port=$2 bin
  bin=$(pg_bin)
  stop_pg "$dir"
  rm -rf "$dir"
  mkdir -p "$dir"
  make_ca "$dir/tls" 127.0.0.1
  chown -R postgres "$dir"
  chmod 755 "$dir" "$dir/tls"
  chmod 644 "$dir/tls/ca.pem"
  su postgres -s /bin/bash -c "$bin/initdb -D '$dir/data' -U postgres --auth=trust -E UTF8 >/dev/null"
  local tls="-c ssl=on -c ssl_cert_file='$dir/tls/dc.pem' -c ssl_key_file='$dir/tls/dc.key'"
  su postgres -s /bin/bash -c "$bin/pg_ctl -D '$dir/data' -o \"-p $port -h 127.0.0.1 -k '$dir' -c max_connections=1000 -c fsync=off $tls\" -l '$dir/log' -w start >/dev/null" \
    || { tail -20 "$dir/log" >&2; die "PostgreSQL did not start on 127.0.0.1:$port"; }
}

stop_pg() {
  local dir=$1 bin
  [ -f "$dir/data/postmaster.pid" ] || return 0
  bin=$(pg_bin)
  su postgres -s /bin/bash -c "$bin/pg_ctl -D '$dir/data' stop -m fast >/dev/null" || true
}

# Two DCs of one domain replicate by name (dNSHostName, and <NTDS GUID>._msdcs for DRS). There is
# no DNS server here: the names go in /etc/hosts, in a block of their own, while the pair runs.
HOSTS_MARK="# stjarna-test-dcs"
set_test_hosts() {
  clear_test_hosts
  local line
  for line in "$@"; do printf '%s %s\n' "$line" "$HOSTS_MARK" >> /etc/hosts; done
}
clear_test_hosts() { sed -i "/ $HOSTS_MARK\$/d" /etc/hosts; }

# ntds_guid URL CA: the objectGUID of the DC's NTDS Settings object, as text.
ntds_guid() {
  LDAPTLS_CACERT="$2" ldapsearch -x -H "$1" -D Administrator@example.test -w "$DC_ADMIN_PASSWORD" \
    -b "CN=Sites,CN=Configuration,$DC_BASE_DN" "(objectClass=nTDSDSA)" objectGUID |
    sed -n 's/^objectGUID:: //p' | head -1 |
    python3 -c 'import base64, sys, uuid; print(uuid.UUID(bytes_le=base64.b64decode(sys.stdin.read().strip())))'
}

# krb5_conf FILE KDC_IP: Kerberos settings for a DC that asks the other DC's KDC (no DNS here).
krb5_conf() {
  printf '[libdefaults]\n\tdefault_realm = EXAMPLE.TEST\n\tdns_lookup_realm = false\n\tdns_lookup_kdc = false\n[realms]\n\tEXAMPLE.TEST = {\n\t\tkdc = %s\n\t}\n' "$2" > "$1"
}

# dc_pair_template: two DCs of one domain, made once like dc_template: dc1 (a copy of the
# template, with the DRS service name a DC registers through DNS updates) and dc2, joined to it
# with samba-tool domain join. Prints its directory; dc1-guid in it names dc1's NTDS object.
dc_pair_template() {
  local base dir guid ip1=127.0.0.10 ip2=127.0.0.11
  base=$(dc_template)
  dir="$STJARNA_ROOT/target/samba/pair-${base##*/template-}"
  if [ ! -f "$dir/.ready" ]; then
    log "joining a second DC to a copy of the template (once; about 10 s)"
    rm -rf "$STJARNA_ROOT"/target/samba/pair-*
    copy_dc "$base" "$dir/dc1" "$ip1"
    start_dc "$dir/dc1" "$ip1" "$DC_ADMIN_PASSWORD"
    guid=$(ntds_guid "ldaps://$ip1" "$dir/dc1/tls/ca.pem")
    [ -n "$guid" ] || die "the template DC's NTDS GUID could not be read"
    printf 'dn: CN=DC1,OU=Domain Controllers,%s\nchangetype: modify\nadd: servicePrincipalName\nservicePrincipalName: E3514235-4B06-11D1-AB04-00C04FC2DCD2/%s/example.test\n' \
      "$DC_BASE_DN" "$guid" | LDAPTLS_CACERT="$dir/dc1/tls/ca.pem" ldapmodify -x -H "ldaps://$ip1" \
      -D Administrator@example.test -w "$DC_ADMIN_PASSWORD" >/dev/null
    set_test_hosts "$ip1 dc1.example.test $guid._msdcs.example.test" "$ip2 dc2.example.test"
    mkdir -p "$dir/dc2/log" "$dir/dc2/run"
    local empty; empty=$(mktemp)
    samba-tool domain join example.test DC -s "$empty" -U "EXAMPLE\\Administrator%$DC_ADMIN_PASSWORD" \
      --server="$ip1" --targetdir="$dir/dc2" --dns-backend=NONE --option="netbios name=DC2" \
      --option="interfaces=$ip2/8" --option="bind interfaces only=yes" --option="pid directory=$dir/dc2/run" \
      --option="ncalrpc dir=$dir/dc2/run/ncalrpc" >"$dir/join.log" 2>&1 \
      || { clear_test_hosts; stop_dc "$dir/dc1"; cat "$dir/join.log" >&2; die "samba-tool domain join failed"; }
    rm -f "$empty"
    stop_dc "$dir/dc1"
    clear_test_hosts
    echo "$guid" > "$dir/dc1-guid"
    touch "$dir/.ready"
  fi
  echo "$dir"
}

# start_dc_pair DIR IP1 IP2: copies of the pair template in DIR/dc1 and DIR/dc2 on IP1 and IP2 (one
# CA for both), their names in /etc/hosts, both started; dc2 pulls dc1's changes every second.
start_dc_pair() {
  local dir=$1 ip1=$2 ip2=$3 template guid
  template=$(dc_pair_template)
  guid=$(cat "$template/dc1-guid")
  stop_dc_pair "$dir"
  copy_dc "$template/dc1" "$dir/dc1" "$ip1"
  rm -rf "$dir/dc2"; cp -a "$template/dc2" "$dir/dc2"
  rm -f "$dir/dc2/samba.pid"; rm -rf "$dir/dc2/run" "$dir/dc2/log"; mkdir -p "$dir/dc2/run" "$dir/dc2/log"
  issue_cert "$dir/dc1/tls" "$dir/dc2/tls" "$ip2" dc2.example.test
  write_smb_conf "$dir/dc2" "$ip2" DC2 "ldap, cldap, kdc, rpc, drepl"
  krb5_conf "$dir/dc2/krb5.conf" "$ip1"
  set_test_hosts "$ip1 dc1.example.test $guid._msdcs.example.test" "$ip2 dc2.example.test"
  start_dc "$dir/dc1" "$ip1" "$DC_ADMIN_PASSWORD"
  KRB5_CONFIG="$dir/dc2/krb5.conf" start_dc "$dir/dc2" "$ip2" "$DC_ADMIN_PASSWORD"
}

stop_dc_pair() {
  local dir=$1
  # A test may have stopped dc1 with SIGSTOP: it must run to die.
  [ -f "$dir/dc1/samba.pid" ] && kill -CONT "$(cat "$dir/dc1/samba.pid")" 2>/dev/null
  stop_dc "$dir/dc1"; stop_dc "$dir/dc2"
  clear_test_hosts
}
