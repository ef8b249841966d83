# Partner sessions: version discovery, OAuth2 tokens fetched off the event
# loop and shared by all workers, refresh before expiry, 401 retry, faults of
# the token endpoint and of the conformance statement, and no blocking
# (issue 5).
use strict;
use warnings;
use Test::More;
use lib 't/lib';
use FhirTest qw(start_gateway http_get json_of top_dir);
use HTTP::Tiny;
use JSON::PP;
use POSIX ();
use Time::HiRes qw(time sleep);

my $pid = 'smart-1288992';
my $http = HTTP::Tiny->new(timeout => 30);

sub stats { my ($g, $p) = @_;
    my $r = $http->get('http://127.0.0.1:' . $g->mock_port($p) . '/_stats');
    return JSON::PP->new->decode($r->{content}); }

# ---- discovery and shared tokens, 2 workers ----
{
    my $g = start_gateway(name => 'partners', workers => 2);
    my $u = $g->url;

    for my $p (qw(redox datica infor dapasoft)) {
        is(http_get("$u/fhir/$p/Patient/$pid")->{status}, 200, "$p: served with the gateway's own token");
    }
    my $log = $g->error_log;
    like($log, qr/partner "datica" speaks dstu2/, 'discovery: datica is DSTU2');
    like($log, qr/partner "redox" speaks stu3/, 'discovery: redox is STU3');
    like($log, qr/partner "infor" speaks dstu2/, 'discovery: infor is DSTU2 (private_key_jwt)');
    unlike($log, qr/partner "dapasoft" speaks/, 'version forced: dapasoft is not asked');
    is(stats($g, 'dapasoft')->{metadataRequests}, 0, 'version forced: no metadata fetch');
    ok(stats($g, 'datica')->{metadataRequests} >= 1, 'version auto: metadata fetched');

    # many requests in both workers: one token per partner, not one each
    my @kids;
    for my $k (1 .. 8) {
        my $child = fork();
        if (!$child) {
            my $h = HTTP::Tiny->new(default_headers => { Authorization => 'Bearer ' . $g->token_for('redox') });
            my $bad = 0;
            for (1 .. 25) { $bad++ if $h->get("$u/fhir/redox/Patient/$pid")->{status} != 200; }
            POSIX::_exit($bad ? 1 : 0);
        }
        push @kids, $child;
    }
    my $failed = 0;
    for (@kids) { waitpid($_, 0); $failed++ if $? }
    is($failed, 0, '200 concurrent requests over 2 workers all served');
    is(stats($g, 'redox')->{tokenRequestsBy}{'gateway-redox'}, 1, 'the token endpoint was asked once');

    # the partner stops honouring the token: one retry with a new one
    sleep 1.1;   # the cached token is older than the next request
    $http->post('http://127.0.0.1:' . $g->mock_port('datica') . '/_revoke');
    my $before = stats($g, 'datica')->{tokenRequestsBy}{'gateway-datica'};
    my $r = http_get("$u/fhir/datica/Patient/$pid");
    is($r->{status}, 200, '401 from the partner: retried with a new token, served');
    is(stats($g, 'datica')->{tokenRequestsBy}{'gateway-datica'}, $before + 1, '... after one new token');
    like($g->error_log, qr/partner "datica" refused the gateway's token; fetching a new one/,
         '... and the error log says so');
    unlike($g->error_log, qr/secret|BEGIN PRIVATE/i, 'no secret in the error log');
    $g->stop;
}

# ---- refresh before expiry ----
{
    my $g = start_gateway(name => 'partners-refresh', env => { TOKEN_TTL => 3, TOKEN_REFRESH => '2s' });
    my $u = $g->url;
    my $bad = 0;
    my $t0 = time;
    while (time - $t0 < 4.5) {
        $bad++ if http_get("$u/fhir/redox/Patient/$pid")->{status} != 200;
        sleep 0.1;
    }
    is($bad, 0, 'tokens that expire every 3 s: every request served');
    my $n = stats($g, 'redox')->{tokenRequestsBy}{'gateway-redox'};
    ok($n >= 3 && $n <= 6, "refreshed before expiry ($n tokens in 4.5 s)");
    $g->stop;
}

# ---- faults ----
{
    my $dir = top_dir() . '/build/t/partners-faults-secrets';
    system("rm -rf $dir; mkdir -p $dir");
    open my $fh, '>', "$dir/secret" or die; print $fh "wrong-secret\n"; close $fh;
    chmod 0600, "$dir/secret";
    my $probe = start_gateway(name => 'partners-faults-probe');
    my $rp = $probe->mock_port('redox');
    $probe->stop;

    my $extra = '';
    my %tok = (tstall => 'fault-stall', t500 => 'fault-500', tmalformed => 'fault-malformed',
               tdenied => 'gateway-redox');
    for my $name (sort keys %tok) {
        $extra .= "fhir_partner $name { url http://127.0.0.1:$rp/fhir; version stu3; "
                . "client_id $tok{$name}; client_secret_file $dir/secret; "
                . "token_url http://127.0.0.1:$rp/token; timeout 2s; }\n";
    }
    for my $m (qw(missing malformed r5)) {
        $extra .= "fhir_partner m$m { url http://127.0.0.1:$rp/fault-$m/fhir; version auto; }\n";
    }
    # a discovered token URL that is no plain http(s) URL is not used
    $extra .= "fhir_partner mbadtoken { url http://127.0.0.1:$rp/fault-badtoken/fhir; version auto; "
            . "client_id gateway-redox; client_secret_file $dir/secret; timeout 2s; }\n";
    my $g = start_gateway(name => 'partners-faults', env => { AUTH => 'off', MOCK_PORT_BASE => $rp - 1 },
                          extra_http => $extra);
    my $u = $g->url;
    is(http_get("$u/fhir/redox/Patient/$pid")->{status}, 200, 'faults: a healthy partner first');

    for my $c ([tstall => 503, 'token endpoint stalls'], [t500 => 503, 'token endpoint answers 500'],
               [tmalformed => 503, 'token endpoint answers malformed JSON'],
               [tdenied => 503, 'token endpoint refuses the credentials'],
               [mmissing => 502, 'metadata missing'], [mmalformed => 502, 'metadata malformed'],
               [mr5 => 502, 'metadata of an unknown version'],
               [mbadtoken => 503, 'a token URL in the metadata that is not a plain URL']) {
        my ($p, $status, $what) = @$c;
        my $r = http_get("$u/fhir/$p/Patient/$pid");
        is($r->{status}, $status, "fault: $what: $status");
        is(eval { json_of($r)->{resourceType} }, 'OperationOutcome', "fault: $what: OperationOutcome");
        if ($status == 503) {
            my $ra = $r->{headers}{'retry-after'} // 0;
            ok($ra >= 1 && $ra <= 5, "fault: $what: Retry-After $ra (until the next try)");
        }
    }
    # a request the gateway cannot answer anyway (a _format other than JSON)
    # is refused before the partner's session is asked for
    is(http_get("$u/fhir/mmissing/Patient/$pid?_format=xml")->{status}, 406,
       'a _format other than JSON: 406 even where the session would fail');
    my $log = $g->error_log;
    like($log, qr/partner "tstall": the token endpoint could not be reached: .*(timed out|[Tt]imeout)/, 'log: the stall');
    like($log, qr/partner "t500": the token endpoint answered HTTP 500/, 'log: the 500');
    like($log, qr/partner "tmalformed": the token endpoint's answer is malformed/, 'log: the malformed answer');
    like($log, qr/partner "tdenied": the token endpoint answered HTTP 401/, 'log: the refusal');
    like($log, qr/partner "mmissing": metadata answered HTTP 404/, 'log: missing metadata');
    like($log, qr/partner "mr5": the conformance statement is malformed or of an unknown FHIR version/,
         'log: unknown version');
    like($log, qr/partner "mbadtoken": .*no token URL: none configured and none in the conformance statement/,
         'log: the unusable token URL is not used');
    unlike($log, qr/wrong-secret/, 'log: no secret');
    is(http_get("$u/fhir/redox/Patient/$pid")->{status}, 200, 'faults: the other partners are still served');

    # no blocking: while one token endpoint stalls, another partner is served at once
    sleep 5.5;   # the stall's remembered failure has passed
    my $child = fork();
    if (!$child) { HTTP::Tiny->new(timeout => 20)->get("$u/fhir/tstall/Patient/$pid"); POSIX::_exit(0); }
    sleep 0.3;
    my $t0 = time;
    my $r = http_get("$u/fhir/datica/Patient/$pid");
    my $dt = time - $t0;
    is($r->{status}, 200, 'no blocking: served while another partner\'s token endpoint stalls');
    ok($dt < 1, sprintf('no blocking: at once (%.3f s)', $dt));
    waitpid($child, 0);
}

# ---- metadata_ttl: the conformance statement is asked again once it is old ----
# (nginx's clock has whole seconds here: with a TTL of 2 s, two requests less
# than a second apart never see it expire, and 2.5 s later it always has)
{
    my $g = start_gateway(name => 'partners-ttl', env => { AUTH => 'off' }, extra_http => <<'CONF');
fhir_partner ttl {
    url http://127.0.0.1:@P_DATICA@/fhir; version auto; metadata_ttl 2s;
    auth client_secret_post; client_id gateway-datica;
    client_secret_file @PREFIX@/secrets/datica.secret;
}
CONF
    my $u = $g->url;
    my $m0 = stats($g, 'datica')->{metadataRequests};
    is(http_get("$u/fhir/ttl/Patient/$pid")->{status}, 200, 'metadata_ttl 2s: served');
    is(http_get("$u/fhir/ttl/Patient/$pid")->{status}, 200, 'metadata_ttl 2s: served again at once');
    is(stats($g, 'datica')->{metadataRequests}, $m0 + 1, '... from one fetch of the statement');
    sleep 2.5;
    is(http_get("$u/fhir/ttl/Patient/$pid")->{status}, 200, 'metadata_ttl 2s: served after 2.5 s');
    my $m;
    for (1 .. 20) {
        $m = stats($g, 'datica')->{metadataRequests};
        last if $m >= $m0 + 2;
        sleep 0.1;
    }
    is($m, $m0 + 2, '... and the statement was fetched again');
    $g->stop;
}

done_testing();
