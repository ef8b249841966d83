# nginx -t refuses a wrong ngx_fhir configuration with a message that names
# the directive and the problem (issue 3).
use strict;
use warnings;
use Test::More;
use lib 't/lib';
use FhirTest qw(top_dir);
use File::Path qw(make_path remove_tree);

my $top = top_dir();
my $prefix = "$top/build/t/config";
remove_tree($prefix);
make_path("$prefix/logs", "$prefix/conf");
open my $tok, '>', "$prefix/conf/tok" or die $!;
print $tok "secret\n";
close $tok;
chmod 0600, "$prefix/conf/tok";
open my $ak, '>', "$prefix/conf/audit.key" or die $!;
print $ak "00112233445566778899aabbccddeeff\n";
close $ak;
chmod 0600, "$prefix/conf/audit.key";

sub nginx_t {
    my ($http, $loc) = @_;
    $loc //= 'fhir_gateway on;';
    open my $fh, '>', "$prefix/conf/nginx.conf" or die $!;
    print $fh <<"CONF";
load_module $FhirTest::MODULE;
pid $prefix/logs/nginx.pid;
error_log $prefix/logs/error.log;
events {}
http {
    $http
    server { listen 127.0.0.1:1; location /fhir/ { $loc proxy_pass \$fhir_upstream_url; } }
}
CONF
    close $fh;
    my $out = `$FhirTest::NGINX -t -p $prefix -c $prefix/conf/nginx.conf 2>&1`;
    return ($? >> 8, $out);
}

my $ok = 'fhir_partner a { url http://127.0.0.1:9/fhir; version stu3; bearer_token_file tok; }';
my ($rc, $out) = nginx_t($ok);
is($rc, 0, 'a good configuration passes') or diag $out;
($rc, $out) = nginx_t('fhir_partner a { url http://127.0.0.1:9/fhir; version auto; client_id c; client_secret_file tok; }');
is($rc, 0, 'version auto with client credentials passes') or diag $out;

# clients files: what goes into the claims of the tokens the gateway signs
my $hash = 'pbkdf2-sha256$1000$c2FsdA$aGFzaA';
for (['clear', "app t1 secret\n"], ['quote', "ap\"p t1 $hash\n"], ['long', ('a' x 129) . " t1 $hash\n"],
     ['tenant', "app t1,t\\2 $hash\n"], ['empty', "app t1,,t2 $hash\n"], ['good', "# c\napp t1,t2 $hash\n"]) {
    open my $fh, '>', "$prefix/conf/clients-$_->[0].txt" or die $!;
    print $fh $_->[1];
    close $fh;
}
($rc, $out) = nginx_t("$ok fhir_clients_file $prefix/conf/clients-good.txt; fhir_token_issuer https://gw.example/x;");
is($rc, 0, 'a clients file with two tenants, and an issuer, pass') or diag $out;
($rc, $out) = nginx_t("$ok fhir_audit_log syslog:server=127.0.0.1,tag=Ngx_fhir_2; fhir_audit_key_file $prefix/conf/audit.key;");
is($rc, 0, 'a syslog tag of letters, digits and "_" passes') or diag $out;

system("umask 077; openssl ecparam -name prime256v1 -genkey -noout -out $prefix/conf/sign.pem") == 0 or die;
($rc, $out) = nginx_t("$ok fhir_token_signing_key $prefix/conf/sign.pem key-2026;");
is($rc, 0, 'a signing key with a key id passes') or diag $out;

my @bad = (
    [qq{$ok fhir_token_signing_key $prefix/conf/sign.pem 'k"1';},
     qr/fhir_token_signing_key: the key id "k"1" holds a quote/, 'a signing key id with a quote'],
    ["$ok fhir_clients_file $prefix/conf/clients-clear.txt;",
     qr/line 1: a secret must be stored as a pbkdf2-sha256\$\.\.\. hash, never in clear/, 'a secret in clear'],
    ["$ok fhir_clients_file $prefix/conf/clients-quote.txt;",
     qr/line 1: the client id holds a quote, a backslash or a control character/, 'a client id with a quote'],
    ["$ok fhir_clients_file $prefix/conf/clients-long.txt;",
     qr/line 1: the client id is too long \(at most 128 bytes/, 'a client id too long'],
    ["$ok fhir_clients_file $prefix/conf/clients-tenant.txt;",
     qr/line 1: the tenant holds a quote, a backslash or a control character/, 'a tenant with a backslash'],
    ["$ok fhir_clients_file $prefix/conf/clients-empty.txt;",
     qr/line 1: the tenant is empty/, 'an empty tenant in the list'],
    [qq{$ok fhir_token_issuer 'https://a"b';}, qr/"fhir_token_issuer" holds a quote/, 'an issuer with a quote'],
    ["$ok fhir_token_url /fhir/token;", qr/"fhir_token_url" "\/fhir\/token" must be an http:\/\/ or https:\/\/ URL/,
     'a token url that is no URL'],
    ["$ok fhir_token_audience " . ('a' x 257) . ';', qr/"fhir_token_audience" is too long \(at most 256 bytes/,
     'an audience too long'],
    ["$ok fhir_audit_log syslog:server=127.0.0.1,tag=a-b;",
     qr/fhir_audit_log: syslog tag "a-b" must be 1 to 32 letters, digits or "_"/, 'a syslog tag nginx would refuse'],
    ["$ok fhir_audit_log syslog:server=127.0.0.1,tag=" . ('t' x 33) . ';',
     qr/fhir_audit_log: syslog tag "t{33}" must be 1 to 32/, 'a syslog tag too long'],
    [q{fhir_partner a { url http://x/fhir; client_id 'c"d'; client_secret_file tok; }},
     qr/fhir_partner "a": client_id "c"d" holds a quote, a backslash or a control character/,
     'a partner client id with a quote'],
    [q{fhir_partner a { url http://x/fhir; key_id 'k"'; }},
     qr/fhir_partner "a": key_id "k"" holds a quote/, 'a key id with a quote'],
    [q{fhir_partner a { url http://x/fhir; token_url 'http://t/"x'; }},
     qr/fhir_partner "a": token_url "http:\/\/t\/"x" holds a quote/, 'a token_url with a quote'],
    ['fhir_partner a { version stu3; }', qr/fhir_partner "a" has no "url"/, 'missing url'],
    ['fhir_partner a { url http://x/fhir; auth client_secret_basic; client_id c; }',
     qr/client_secret_basic needs "client_id" and "client_secret_file"/, 'basic without a secret'],
    ['fhir_partner a { url http://x/fhir; auth private_key_jwt; client_id c; }',
     qr/private_key_jwt needs "client_id" and "private_key_file"/, 'private_key_jwt without a key'],
    ['fhir_partner a { url http://x/fhir; private_key_file tok; }',
     qr/is not a PEM RSA or EC P-384 private key/, 'a key file that is no key'],
    ['fhir_partner a { url http://x/fhir; auth magic; }', qr/auth "magic": use client_secret_basic/, 'unknown auth'],
    ['fhir_partner a { url http://x/fhir; token_url ftp://t; }', qr/token_url "ftp:\/\/t" must start with http/, 'bad token_url'],
    ['fhir_partner a { url http://x/fhir; bearer_token_file tok; client_id c; client_secret_file tok; }',
     qr/"bearer_token_file" and client credentials exclude each other/, 'two kinds of credentials'],
    ['fhir_partner a { url ftp://x; version stu3; }', qr/url "ftp:\/\/x" must start with http/, 'bad scheme'],
    ['fhir_partner a { url http://x; version stu4; }', qr/invalid version "stu4"/, 'bad version'],
    ['fhir_partner a { url http://x; version stu3; colour blue; }', qr/unknown setting "colour"/, 'unknown setting'],
    ["$ok fhir_partner a { url http://y; version r4; }", qr/duplicate partner "a"/, 'duplicate partner'],
    ['fhir_partner "a b" { url http://x; version r4; }', qr/invalid partner name "a b"/, 'bad name'],
    ['fhir_partner a { url http://x; version r4; bearer_token_file missing.tok; }',
     qr/missing\.tok.*failed/, 'missing token file'],
    ['', qr/"fhir_gateway" directive needs at least one "fhir_partner"/, 'gateway without partners'],
    ["$ok fhir_max_depth 3;", qr/"fhir_max_depth" must be between 8 and 1000, not 3/, 'depth bounds'],
    ["$ok fhir_public_url fhir.example;", qr/"fhir_public_url" must start with http/, 'bad public url'],
    [qq{$ok fhir_public_url 'https://fhir.example/a"b';}, qr/"fhir_public_url" "https:\/\/fhir\.example\/a"b" holds a quote/,
     'a public url with a quote'],
    ["$ok server { listen 127.0.0.1:2; location '/f\"x/' { fhir_gateway on; proxy_pass \$fhir_upstream_url; } }",
     qr/"fhir_gateway" directive must be in a location whose prefix has no quote/, 'a location prefix with a quote'],
    # a gateway location without proxy_pass would be nginx's static files
    ["$ok server { listen 127.0.0.1:2; location /g/ { fhir_gateway on; } }",
     qr/"fhir_gateway on" in location "\/g\/" without "proxy_pass": include conf\/fhir_proxy\.conf/,
     'a gateway location without proxy_pass'],
    ["$ok server { listen 127.0.0.1:2; location /g/ { fhir_gateway on; proxy_pass \$fhir_upstream_url;"
     . " location /g/admin/ { deny all; } } }",
     qr/"fhir_gateway on" in location "\/g\/admin\/" without "proxy_pass".*"fhir_gateway off"/,
     'a nested location that inherits the gateway and does not proxy'],
    ["$ok fhir_audit_log $prefix/logs/a.log buffer=64k;",
     qr/fhir_audit_log: invalid parameter "buffer=64k" \(audit files are mode=0600 or mode=0640; records are never buffered\)/,
     'audit records are not buffered'],
);

for my $b (@bad) {
    my ($http, $re, $what) = @$b;
    ($rc, $out) = nginx_t($http);
    isnt($rc, 0, "$what: refused");
    like($out, $re, "$what: clear message") or diag $out;
}

# an if block or limit_except in a gateway location proxies as the location
# does (nginx keeps the location's content handler for them)
($rc, $out) = nginx_t($ok, 'fhir_gateway on; if ($request_method = OPTIONS) { return 204; } '
                         . 'limit_except GET POST { deny all; }');
is($rc, 0, 'an if block and limit_except in a gateway location pass') or diag $out;

# a nested location that does not proxy, with the gateway off in it
($rc, $out) = nginx_t($ok, 'fhir_gateway on; location /fhir/admin/ { fhir_gateway off; deny all; }');
is($rc, 0, 'a nested location with "fhir_gateway off" passes') or diag $out;

# a world-readable secret file is accepted with a warning
chmod 0644, "$prefix/conf/tok";
($rc, $out) = nginx_t($ok);
is($rc, 0, 'world-readable token file still passes');
like($out, qr/\[warn\].*secret file .*tok" is readable by every user/, '... with a warning');

done_testing();
