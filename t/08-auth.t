# Caller identity: the gateway's token endpoint (client credentials, tenant
# in scope, secret rotation), bearer validation of its own tokens and of an
# external issuer's (JWKS), more than 20 bad tokens each refused with the
# right status, routing by tenant (issue 8).
use strict;
use warnings;
use Test::More;
use lib 't/lib';
use FhirTest qw(start_gateway http_get json_of top_dir get_token %TENANT);
use HTTP::Tiny;
use JSON::PP;
use MIME::Base64 ();
use File::Copy qw(copy);

my $top = top_dir();
my $pid = 'smart-1288992';
my $keys = "$top/build/t/auth-keys";
system("rm -rf $keys && mkdir -p $keys") == 0 or die;
system("node $top/t/lib/jwt.js keys $keys") == 0 or die 'jwt.js keys';

# a clients file of its own, to rotate and revoke in
my $clients = "$keys/clients.txt";
copy("$top/conf/demo/clients.txt", $clients) or die;

my $g = start_gateway(name => 'auth', env => { CLIENTS => $clients },
    extra_http => "fhir_auth_trust https://login.example/tenant/v2.0 $keys/jwks.json api://ngx-fhir;\n");
my $u = $g->url;
my $port = $g->{port};
my $iss = "http://127.0.0.1:$port/fhir";
my $signing = $g->prefix . '/secrets/token-signing.pem';
my $http = HTTP::Tiny->new(timeout => 10);

sub token_req {
    my (%f) = @_;
    my $h = delete $f{headers} // {};
    my $body = delete $f{raw} // join '&', map { "$_=$f{$_}" } sort keys %f;
    return $http->post("$u/fhir/token", { content => $body,
        headers => { 'Content-Type' => 'application/x-www-form-urlencoded', %$h } });
}

# ---- the token endpoint ----

my $tid = $TENANT{datica};
{
    my $r = token_req(grant_type => 'client_credentials', client_id => 'patients-app-datica',
                      client_secret => 'demo-secret-datica', scope => $tid);
    is($r->{status}, 200, 'token: good client (form)');
    my $j = json_of($r);
    ok($j->{access_token}, 'token: access_token');
    is($j->{token_type}, 'Bearer', 'token: token_type Bearer');
    ok($j->{expires_in} > 0 && $j->{expires_in} <= 3600, "token: expires_in ($j->{expires_in})");
    is($r->{headers}{'cache-control'}, 'no-store', 'token: Cache-Control no-store');
    my ($h, $p) = map { JSON::PP->new->decode(MIME::Base64::decode_base64url($_)) }
                  (split /\./, $j->{access_token})[0, 1];
    is($h->{alg}, 'ES256', 'token: signed ES256');
    is($p->{tid}, $tid, 'token: the tenant');
    is($p->{client_id}, 'patients-app-datica', 'token: the client');
    is($p->{iss}, $iss, 'token: iss');
    ok($p->{jti} && $p->{exp} > $p->{iat}, 'token: jti, iat, exp');

    $r = token_req(grant_type => 'client_credentials', scope => $tid,
                   headers => { Authorization => 'Basic '
                       . MIME::Base64::encode_base64('patients-app-datica:demo-secret-datica', '') });
    is($r->{status}, 200, 'token: good client (HTTP Basic)');

    my @bad = (
        [ 'wrong secret', 401, 'invalid_client',
          { grant_type => 'client_credentials', client_id => 'patients-app-datica', client_secret => 'nope', scope => $tid } ],
        [ 'unknown client', 401, 'invalid_client',
          { grant_type => 'client_credentials', client_id => 'who', client_secret => 'x', scope => $tid } ],
        [ 'tenant not allowed', 400, 'invalid_scope',
          { grant_type => 'client_credentials', client_id => 'patients-app-datica', client_secret => 'demo-secret-datica', scope => $TENANT{redox} } ],
        [ 'missing grant type', 400, 'invalid_request',
          { client_id => 'patients-app-datica', client_secret => 'demo-secret-datica', scope => $tid } ],
        [ 'wrong grant type', 400, 'unsupported_grant_type',
          { grant_type => 'password', client_id => 'patients-app-datica', client_secret => 'demo-secret-datica', scope => $tid } ],
        [ 'no client authentication', 401, 'invalid_client',
          { grant_type => 'client_credentials', scope => $tid } ],
    );
    for my $b (@bad) {
        my ($what, $status, $err, $form) = @$b;
        my $r = token_req(%$form);
        is($r->{status}, $status, "token: $what: $status");
        is(eval { json_of($r)->{error} }, $err, "token: $what: $err");
    }
    $r = $http->post("$u/fhir/token", { content => '{"grant_type":"client_credentials"}',
                                        headers => { 'Content-Type' => 'application/json' } });
    is($r->{status}, 400, 'token: malformed body (JSON): 400');
    is(eval { json_of($r)->{error} }, 'invalid_request', 'token: malformed body: invalid_request');
    my $get = $http->get("$u/fhir/token");
    is($get->{status}, 405, 'token: GET is 405');
    is($get->{headers}{allow}, 'POST', 'token: GET: Allow: POST');
    is(eval { JSON::PP->new->decode($get->{content})->{error} }, 'invalid_request',
       'token: GET: an OAuth error in JSON, not an HTML page');
}

# rotation without downtime: a new secret works at once, the old one until revoked
{
    my $out = `$top/scripts/fhir-client $clients rotate patients-app-datica new-secret-1`;
    like($out, qr/client_secret=new-secret-1/, 'rotate: a new secret');
    system($FhirTest::NGINX, '-p', $g->prefix, '-c', $g->prefix . '/conf/nginx.conf', '-s', 'reload');
    select(undef, undef, undef, 1);
    ok(get_token($g, 'datica', secret => 'new-secret-1'), 'rotate: the new secret works');
    ok(get_token($g, 'datica'), 'rotate: the old secret still works');
    system("$top/scripts/fhir-client $clients revoke patients-app-datica >/dev/null");
    system($FhirTest::NGINX, '-p', $g->prefix, '-c', $g->prefix . '/conf/nginx.conf', '-s', 'reload');
    select(undef, undef, undef, 1);
    ok(!get_token($g, 'datica'), 'revoke: the old secret is refused');
    ok(get_token($g, 'datica', secret => 'new-secret-1'), 'revoke: the new one works');
    unlike(do { local (@ARGV, $/) = $clients; <> }, qr/new-secret-1/, 'the file holds no secret in clear');
}

# ---- bearer tokens ----

my $good_tok = get_token($g, 'datica', secret => 'new-secret-1');
sub data { my ($tok, $path) = @_;
    return $http->get("$u" . ($path // "/fhir/datica/Patient/$pid"),
                      { headers => defined $tok ? { Authorization => $tok } : {} }); }
is(data("Bearer $good_tok")->{status}, 200, 'a valid token reaches its partner');

my $now = time;
sub claims { my (%c) = @_;
    my %base = (iss => $iss, aud => $iss, sub => 'patients-app-datica', client_id => 'patients-app-datica',
                tid => $tid, iat => $now, exp => $now + 600, jti => 'j' . rand());
    my %all = (%base, %c);
    delete $all{$_} for grep { !defined $all{$_} } keys %all;
    return JSON::PP->new->canonical->encode(\%all);
}
sub jwt { my (@args) = @_;
    my $q = join ' ', map { my $x = $_; $x =~ s/'/'\\''/g; "'$x'" } @args;
    my $t = `node $top/t/lib/jwt.js $q`;
    die "jwt.js failed" if $?;
    return $t;
}
my $own = sub { my (%c) = @_; jwt('sign', $signing, 'ES256', 'ngx-fhir-1', claims(%c)) };

ok(data('Bearer ' . $own->())->{status} == 200, 'a token the test signs with the gateway key works (sanity)');

(my $pub = `openssl ec -in $signing -pubout 2>/dev/null`) or die;
open my $pf, '>', "$keys/gw-pub.pem"; print $pf $pub; close $pf;

my $ext_claims = sub { my (%c) = @_;
    claims(iss => 'https://login.example/tenant/v2.0', aud => 'api://ngx-fhir', %c) };

# larger than the 6 KB the gateway accepts, smaller than nginx's 8 KB header
# buffers (beyond those nginx itself answers 400)
my $long = 'Bearer ' . ('a' x 3000) . '.' . ('b' x 3500) . '.' . ('c' x 100);
my $valid = $own->();
(my $flipped = $valid) =~ s/(.)$/$1 eq 'A' ? 'B' : 'A'/e;
my ($vh, $vp, $vs) = split /\./, $valid;

my @cases = (
    [ 'no Authorization header',   undef,                                       401 ],
    [ 'wrong scheme',              "Basic " . MIME::Base64::encode_base64('a:b', ''), 401 ],
    [ 'empty bearer',              'Bearer ',                                   401 ],
    [ 'not three parts',           "Bearer $vh.$vp",                            401 ],
    [ 'malformed base64url',       "Bearer $vh!.$vp.$vs",                       401 ],
    [ 'header is not JSON',        'Bearer ' . MIME::Base64::encode_base64url('{not json') . ".$vp.$vs", 401 ],
    [ 'payload is not JSON',       "Bearer $vh." . MIME::Base64::encode_base64url('nope') . ".$vs", 401 ],
    [ 'alg none',                  'Bearer ' . jwt('none', claims()),           401 ],
    [ 'HS256 signed with the public key', 'Bearer ' . jwt('hs256', "$keys/gw-pub.pem", 'ngx-fhir-1', claims()), 401 ],
    [ 'wrong signature',           "Bearer $flipped",                           401 ],
    [ 'signature of the wrong size', "Bearer $vh.$vp." . substr($vs, 0, 40),    401 ],
    [ 'unknown kid',               'Bearer ' . jwt('sign', $signing, 'ES256', 'no-such-kid', claims()), 401 ],
    [ 'RS256 claimed on an EC key', 'Bearer ' . jwt('sign', "$keys/ext-rsa.pem", 'RS256', 'ngx-fhir-1', claims()), 401 ],
    [ 'expired',                   'Bearer ' . $own->(exp => $now - 3600),       401 ],
    [ 'not yet valid',             'Bearer ' . $own->(nbf => $now + 3600),       401 ],
    [ 'no exp',                    'Bearer ' . $own->(exp => undef),             401 ],
    [ 'wrong iss',                 'Bearer ' . $own->(iss => 'https://evil.example'), 401 ],
    [ 'wrong aud',                 'Bearer ' . $own->(aud => 'someone-else'),    401 ],
    [ 'critical header',           'Bearer ' . jwt('sign', $signing, 'ES256', 'ngx-fhir-1', claims(), '{"crit":["x"],"x":1}'), 401 ],
    [ 'absurd size',               $long,                                        401 ],
    [ 'attacker key with a real kid', 'Bearer ' . jwt('sign', "$keys/other-rsa.pem", 'RS256', 'ext-rsa', $ext_claims->()), 401 ],
    [ 'external token, wrong aud', 'Bearer ' . jwt('sign', "$keys/ext-rsa.pem", 'RS256', 'ext-rsa', $ext_claims->(aud => 'api://other')), 401 ],
    [ 'no tenant',                 'Bearer ' . $own->(tid => undef),             403 ],
    [ 'unmapped tenant',           'Bearer ' . $own->(tid => '00000000-0000-0000-0000-000000000000'), 403 ],
);

for my $c (@cases) {
    my ($what, $auth, $status) = @$c;
    my $r = data($auth);
    is($r->{status}, $status, "bad token: $what: $status");
    my $j = json_of($r);
    is($j && $j->{resourceType}, 'OperationOutcome', "bad token: $what: OperationOutcome");
    if ($status == 401) {
        like($r->{headers}{'www-authenticate'} // '', qr/^Bearer error="invalid_token", error_description="[^"]+"/,
             "bad token: $what: WWW-Authenticate");
    }
}

like(data($long)->{headers}{'www-authenticate'} // '', qr/too large/, 'an absurd token is refused for its size');
is(data('Bearer ' . ('x' x 10000))->{status}, 400, 'a header beyond nginx\'s buffers: 400 from nginx itself');

# external issuer (an Azure AD-like JWKS): RS256, PS256 and ES256 keys
for my $alg ([qw(ext-rsa.pem RS256 ext-rsa)], [qw(ext-rsa.pem PS256 ext-rsa)], [qw(ext-ec.pem ES256 ext-ec)]) {
    my ($k, $a, $kid) = @$alg;
    my $t = jwt('sign', "$keys/$k", $a, $kid, $ext_claims->());
    is(data("Bearer $t")->{status}, 200, "external issuer: $a accepted");
}
# the JWKS says ES256 for ext-ec: another algorithm on it is refused
is(data('Bearer ' . jwt('sign', "$keys/ext-rsa.pem", 'PS256', 'ext-ec', $ext_claims->()))->{status}, 401,
   'external issuer: an algorithm other than the key\'s is refused');

# routing by tenant
{
    my $t = "Bearer $good_tok";
    is(data($t, "/fhir/Patient/$pid")->{status}, 200, 'tenant routing: /fhir/Patient/<id> goes to the tenant\'s partner');
    is(data($t, '/fhir/redox/Patient/' . $pid)->{status}, 403, 'tenant routing: another tenant\'s partner is 403');
    for my $p (sort keys %TENANT) {
        my $tok = get_token($g, $p) // get_token($g, $p, secret => 'new-secret-1');
        my $r = data("Bearer $tok", "/fhir/Patient/$pid");
        is($r->{status}, 200, "tenant of $p reaches its partner");
    }
    is(data(undef, '/fhir/datica/metadata')->{status}, 200, 'metadata needs no token');
    like(data(undef, '/fhir/datica/metadata')->{content}, qr{"valueUri":"http://127\.0\.0\.1:$port/fhir/token"},
         'metadata advertises the gateway\'s token URL');
}

# the caller in the audit trail and the access log
{
    my $r = data("Bearer $good_tok");
    select(undef, undef, undef, 0.3);
    open my $fh, '<', $g->prefix . '/logs/audit.log';
    my ($rec) = grep { ($_->{request_id} // '') eq $r->{headers}{'x-request-id'} }
                map { JSON::PP->new->decode($_) } <$fh>;
    is($rec->{tenant}, $tid, 'audit: tenant');
    is($rec->{client_id}, 'patients-app-datica', 'audit: client id');
    is($rec->{subject}, 'patients-app-datica', 'audit: subject');
    my ($den) = do { open my $f2, '<', $g->prefix . '/logs/audit.log';
                     grep { ($_->{outcome} // '') eq 'denied' } map { JSON::PP->new->decode($_) } <$f2> };
    ok($den, 'audit: denials are recorded');
    my $al = do { local (@ARGV, $/) = $g->prefix . '/logs/access.log'; <> };
    like($al, qr/tenant=\Q$tid\E client=patients-app-datica/, 'access log: $fhir_tenant, $fhir_client_id');
    unlike($g->error_log, qr/\Q$good_tok\E|demo-secret|new-secret/, 'no token or secret in the error log');
}

# more partners than the array first held, one declared after the
# fhir_tenant lines (the demo configuration includes extra http settings
# after them): each tenant's token still reaches its own partner
{
    $g->stop;
    my $g5 = start_gateway(name => 'auth-five',
        extra_http => "fhir_partner fifth { url http://127.0.0.1:9/fhir; version r4; }\n");
    for my $p (qw(redox datica infor dapasoft)) {
        my $r = http_get($g5->url . "/fhir/$p/Patient/smart-1288992");
        is($r->{status}, 200, "a fifth partner declared after the tenants: ${p}'s token reads $p");
    }
    $g5->stop;
}

done_testing();
