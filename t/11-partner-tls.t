# TLS toward partners (issue 5): libcurl (metadata, tokens) and nginx's proxy
# (the FHIR requests) both verify the partner's certificate, against the
# partner's ca_file and proxy_ssl_trusted_certificate; tls_verify off is the
# only way around it.  A TLS front in the test nginx serves the Datica mock.
use strict;
use warnings;
use Test::More;
use lib 't/lib';
use FhirTest qw(start_gateway http_get json_of top_dir free_port);
use File::Path qw(make_path remove_tree);
use IO::Socket::INET;

my $top = top_dir();
my $pki = "$top/build/t/tls-pki";
remove_tree($pki);
make_path($pki);

sub sh {
    my ($cmd) = @_;
    my $out = `$cmd 2>&1`;
    die "$cmd: $out" if $?;
}
my $ec = '-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes';
# a private CA, a partner certificate it signed for 127.0.0.1, and a rogue
# self-signed one
sh("openssl req -x509 $ec -keyout $pki/ca.key -out $pki/ca.pem -days 2 -subj /CN=ngx_fhir-test-CA");
sh("openssl req $ec -keyout $pki/partner.key -out $pki/partner.csr -subj /CN=127.0.0.1");
open my $ext, '>', "$pki/san.ext" or die $!;
print $ext "subjectAltName=IP:127.0.0.1\n";
close $ext;
sh("openssl x509 -req -in $pki/partner.csr -CA $pki/ca.pem -CAkey $pki/ca.key -CAcreateserial"
   . " -out $pki/partner.pem -days 2 -extfile $pki/san.ext");
sh("openssl req -x509 $ec -keyout $pki/rogue.key -out $pki/rogue.pem -days 2 -subj /CN=127.0.0.1"
   . " -addext subjectAltName=IP:127.0.0.1");

my ($tls, $rogue) = (free_port(), free_port());

my $creds = 'auth client_secret_post; client_id gateway-datica; '
          . 'client_secret_file @PREFIX@/secrets/datica.secret;';
my $g = start_gateway(name => 'partner-tls', env => { AUTH => 'off', TRUSTED_CA => "$pki/ca.pem" },
    extra_http => <<"CONF");
server {
    listen 127.0.0.1:$tls ssl;
    ssl_certificate     $pki/partner.pem;
    ssl_certificate_key $pki/partner.key;
    location / { proxy_pass http://127.0.0.1:\@P_DATICA\@; }
}
server {
    listen 127.0.0.1:$rogue ssl;
    ssl_certificate     $pki/rogue.pem;
    ssl_certificate_key $pki/rogue.key;
    location / { proxy_pass http://127.0.0.1:\@P_DATICA\@; }
}
fhir_partner secure {
    url https://127.0.0.1:$tls/fhir; version auto; $creds
    token_url https://127.0.0.1:$tls/token; ca_file $pki/ca.pem;
}
fhir_partner unknownca {
    url https://127.0.0.1:$tls/fhir; version auto; $creds
    token_url https://127.0.0.1:$tls/token;
}
fhir_partner rogue {
    url https://127.0.0.1:$rogue/fhir; version auto; $creds
    token_url https://127.0.0.1:$rogue/token; ca_file $pki/ca.pem;
}
fhir_partner rogueproxy {
    url https://127.0.0.1:$rogue/fhir; version stu3; $creds
    token_url https://127.0.0.1:$rogue/token; tls_verify off;
}
CONF
my $u = $g->url;
my $pid = 'smart-1288992';

# the partner's CA in ca_file and in proxy_ssl_trusted_certificate
my $r = http_get("$u/fhir/secure/Patient/$pid");
is($r->{status}, 200, 'TLS partner, its CA known: served');
is(eval { json_of($r)->{id} }, $pid, '... the patient, over TLS both ways (discovery, token, data)');
my $stats = `curl -s http://127.0.0.1:@{[ $g->mock_port('datica') ]}/_stats`;
like($stats, qr/"gateway-datica":[1-9]/, '... with a token fetched over TLS');

# libcurl's default bundle does not know the private CA
$r = http_get("$u/fhir/unknownca/Patient/$pid");
ok($r->{status} == 502 || $r->{status} == 503, "CA not configured: $r->{status}");
is(eval { json_of($r)->{resourceType} }, 'OperationOutcome', '... an OperationOutcome');
like($g->error_log, qr/partner "unknownca".*(certificate|SSL)/i, '... the error log names the certificate problem');

# a certificate no configured CA signed: refused by libcurl
$r = http_get("$u/fhir/rogue/Patient/$pid");
ok($r->{status} == 502 || $r->{status} == 503, "self-signed partner certificate (libcurl): $r->{status}");
like($g->error_log, qr/partner "rogue".*(certificate|SSL)/i, '... logged');

# ... and by nginx's proxy, even when tls_verify off lets libcurl through
$r = http_get("$u/fhir/rogueproxy/Patient/$pid");
is($r->{status}, 502, 'self-signed partner certificate (proxy): 502');
is(eval { json_of($r)->{resourceType} }, 'OperationOutcome', '... an OperationOutcome');
like($g->error_log, qr/upstream SSL certificate verify error/, '... nginx logs the verification failure');
my $pfx = $g->prefix;
like(`$FhirTest::NGINX -t -p $pfx -c $pfx/conf/nginx.conf 2>&1`, qr/\[warn\].*partner "rogueproxy": tls_verify off/,
     'nginx -t warns of tls_verify off');

is(http_get("$u/fhir/secure/Patient/$pid")->{status}, 200, 'the good partner is still served');

done_testing();
