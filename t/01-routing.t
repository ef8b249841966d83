# Routing to each demo partner through a real nginx with the module loaded,
# and the gateway's own errors as FHIR OperationOutcomes (issue 3).
use strict;
use warnings;
use Test::More;
use lib 't/lib';
use FhirTest qw(start_gateway http_get json_of);
use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP;

my $g = start_gateway(name => 'routing', read_timeout => '1s');
my $u = $g->url;

# each partner serves the same SMART patient, in its own version
for my $p (qw(redox datica infor dapasoft)) {
    my $r = http_get("$u/fhir/$p/Patient/smart-1288992");
    is($r->{status}, 200, "$p: Patient read is 200");
    like($r->{headers}{'content-type'}, qr{^application/fhir\+json; fhirVersion=4\.0},
         "$p: R4 content type");
    is($r->{headers}{'cache-control'}, 'no-store', "$p: Cache-Control: no-store");
    ok(!exists $r->{headers}{'content-length'}, "$p: the partner's Content-Length is dropped");
    my $j = json_of($r);
    is($j->{resourceType}, 'Patient', "$p: a Patient");
    is($j->{id}, 'smart-1288992', "$p: the right one");
    # R4: HumanName.family is one string (DSTU2 partners send an array)
    is(ref($j->{name}[0]{family}), '', "$p: family is a string");
    is($j->{name}[0]{family}, 'Adams', "$p: family name kept");
    # the partner's Content-Location (its own URL of the version read) names
    # the gateway's route instead
    is($r->{headers}{'content-location'}, "$u/fhir/$p/Patient/smart-1288992/_history/1",
       "$p: Content-Location on the gateway's route");
}

# what of the caller's request reaches the partner: an allow-list
# (fhir_proxy.conf), so that its credentials, cookies and the identity
# headers a front end adds never do
{
    my $r = http_get("$u/fhir/datica/Patient/smart-1288992",
                     'Cookie' => 'session=caller-secret',
                     'Proxy-Authorization' => 'Basic Y2FsbGVyOnNlY3JldA==',
                     'X-MS-CLIENT-PRINCIPAL' => 'eyJ1c2VyIjoiZHIuc21pdGgifQ==',
                     'X-Forwarded-For' => '10.1.2.3', 'Forwarded' => 'for=10.1.2.3',
                     'X-Forwarded-Host' => 'teams.example', 'X-Forwarded-Proto' => 'https',
                     'X-Custom-Phi' => 'Adams', 'Range' => 'bytes=0-10',
                     'If-Modified-Since' => 'Sat, 01 Jan 2000 00:00:00 GMT',
                     'Prefer' => 'handling=strict', 'Accept' => 'application/json');
    is($r->{status}, 200, 'a read with many caller headers: 200');
    my %got = map { $_ => 1 } split /,/, $r->{headers}{'x-mock-request-headers'} // '';
    ok(%got, 'the partner says which headers it got');
    ok(!$got{$_}, "the caller's $_ does not reach the partner")
        for qw(cookie proxy-authorization x-ms-client-principal x-forwarded-for forwarded
               x-forwarded-host x-forwarded-proto x-custom-phi range);
    ok($got{$_}, "$_ reaches the partner")
        for qw(authorization accept accept-encoding host if-modified-since prefer user-agent
               x-request-id);
    is($r->{headers}{'x-mock-request-id'}, $r->{headers}{'x-request-id'},
       'the partner gets the request id of the gateway\'s logs');
}

# a DSTU2 MedicationOrder read as MedicationRequest: its Content-Location too
{
    my $b = json_of(http_get("$u/fhir/datica/MedicationRequest?patient=smart-1288992&_count=1"));
    my $id = $b->{entry}[0]{resource}{id} // 'none';
    my $r = http_get("$u/fhir/datica/MedicationRequest/$id");
    is($r->{status}, 200, 'DSTU2 MedicationOrder read as MedicationRequest');
    is($r->{headers}{'content-location'}, "$u/fhir/datica/MedicationRequest/$id/_history/1",
       '... its Content-Location names MedicationRequest on the gateway');
}

# HEAD: the headers a GET would get, without a body; the partner is asked
# with GET (proxy_method in conf/fhir_proxy.conf: a partner need not
# implement HEAD), and what it sends is not converted (nginx sends the caller
# no body)
for my $p (qw(redox datica)) {
    my %h = (Authorization => 'Bearer ' . ($g->token_for($p) // ''));
    my $r = HTTP::Tiny->new(timeout => 10)->head("$u/fhir/$p/Patient/smart-1288992", { headers => \%h });
    is($r->{status}, 200, "$p: HEAD of a read is 200");
    like($r->{headers}{'content-type'} // '', qr{^application/fhir\+json; fhirVersion=4\.0},
         "$p: HEAD has the R4 content type");
    ok(!exists $r->{headers}{'content-length'}, "$p: HEAD has no partner Content-Length");
    is($r->{content} // '', '', "$p: HEAD has no body");
    is($r->{headers}{'x-mock-method'}, 'GET', "$p: the partner was asked with GET");
    $r = HTTP::Tiny->new(timeout => 10)->head("$u/fhir/$p/Observation?patient=smart-1288992&category=vital-signs",
                                              { headers => \%h });
    is($r->{status}, 200, "$p: HEAD of a search is 200");
    $r = HTTP::Tiny->new(timeout => 10)->head("$u/fhir/$p/Patient/no-such-patient", { headers => \%h });
    is($r->{status}, 404, "$p: HEAD of a missing resource is the partner's 404");
}
unlike($g->error_log, qr/cannot be converted/, 'HEAD: no conversion failure logged');

# _format: JSON (any spelling) is served, anything else refused with 406 (a
# partner would answer in a format the gateway cannot convert, and the 502
# would blame it); other methods get 405 with an Allow header
{
    my $r = http_get("$u/fhir/datica/Patient/smart-1288992?_format=application/fhir%2Bjson");
    is($r->{status}, 200, '_format JSON: served');
    is(json_of($r)->{id}, 'smart-1288992', '_format JSON: the Patient');
    for my $f (qw(xml application/fhir%2Bxml ttl html)) {
        $r = http_get("$u/fhir/datica/Patient/smart-1288992?_format=$f");
        is($r->{status}, 406, "_format=$f: 406");
        my $j = json_of($r);
        is($j->{resourceType}, 'OperationOutcome', "_format=$f: an OperationOutcome");
        is($j->{issue}[0]{code}, 'not-supported', "_format=$f: not-supported");
    }
    $r = HTTP::Tiny->new(timeout => 10)->post("$u/fhir/datica/Patient/_search", {
        content => 'family=adam&_format=xml',
        headers => { Authorization => 'Bearer ' . $g->token_for('datica'),
                     'Content-Type' => 'application/x-www-form-urlencoded' } });
    is($r->{status}, 406, 'a POST search form asking for XML: 406');
    for my $m (qw(PUT DELETE OPTIONS PATCH)) {
        $r = HTTP::Tiny->new(timeout => 10)->request($m, "$u/fhir/datica/Patient/smart-1288992",
            { headers => { Authorization => 'Bearer ' . $g->token_for('datica') } });
        is($r->{status}, 405, "$m: 405");
        is($r->{headers}{allow}, 'GET, HEAD, POST', "$m: Allow names what the gateway serves");
        is(json_of($r)->{issue}[0]{code}, 'not-supported', "$m: an OperationOutcome");
    }
}

# request bodies: a POST search is a form, a batch FHIR JSON (415 otherwise);
# a body over client_max_body_size (1m in fhir_proxy.conf), which nginx
# refuses before the gateway sees the request, is a 413 OperationOutcome
{
    my $post = sub {
        my ($path, $ct, $body) = @_;
        return HTTP::Tiny->new(timeout => 10)->post("$u/fhir/datica/$path", { content => $body,
            headers => { Authorization => 'Bearer ' . $g->token_for('datica'), 'Content-Type' => $ct } });
    };
    my $r = $post->('Patient/_search', 'application/json', '{"family":"adam"}');
    is($r->{status}, 415, 'POST search with a JSON body: 415');
    is(eval { json_of($r)->{issue}[0]{code} }, 'not-supported', '... an OperationOutcome');
    $r = $post->('Patient/_search', 'application/x-www-form-urlencoded; charset=UTF-8', 'family=adam');
    is($r->{status}, 200, 'POST search with a form (charset given): 200');
    $r = $post->('', 'application/fhir+xml', '<Bundle xmlns="http://hl7.org/fhir"/>');
    is($r->{status}, 415, 'batch in XML: 415');
    is(eval { json_of($r)->{resourceType} }, 'OperationOutcome', '... an OperationOutcome');
    # a compressed body: nginx does not decode it, and the gateway reads it
    $r = HTTP::Tiny->new(timeout => 10)->post("$u/fhir/datica/Patient/_search", {
        content => "\x1f\x8b\x08\x00garbage", headers => {
            Authorization => 'Bearer ' . $g->token_for('datica'),
            'Content-Type' => 'application/x-www-form-urlencoded', 'Content-Encoding' => 'gzip' } });
    is($r->{status}, 415, 'POST search with a gzip body: 415');
    like(eval { json_of($r)->{issue}[0]{diagnostics} } // '', qr/uncompressed/, '... an OperationOutcome that says why');
    $r = $post->('Patient/_search', 'application/x-www-form-urlencoded', 'family=' . ('a' x 1_100_000));
    is($r->{status}, 413, 'a body over client_max_body_size: 413');
    is(eval { json_of($r)->{issue}[0]{code} }, 'too-costly', '... an OperationOutcome, not an HTML page');
}

# what nginx refuses before any location is chosen (conf/fhir_errors.conf in
# the server): the same status as an OperationOutcome, not audited
{
    my $audit = $g->prefix . '/logs/audit.log';
    my $before = -s $audit;
    ok($before, 'the routing gateway audits (its log has records)');
    my $raw = sub {
        my ($req) = @_;
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $g->{port}) or die $!;
        print $s $req;
        local $/;
        my $resp = <$s>;
        my ($head, $body) = split /\r\n\r\n/, $resp // '', 2;
        return ($head // '', $body // '');
    };
    my ($head, $body) = $raw->("GET /fhir/datica/Patient/%ZZ HTTP/1.1\r\nHost: x\r\n\r\n");
    like($head, qr{^HTTP/1\.1 400}, 'malformed URI: 400');
    like($head, qr{Content-Type: application/fhir\+json}i, 'malformed URI: FHIR JSON');
    my $j = eval { JSON::PP->new->decode($body) } || {};
    is($j->{resourceType}, 'OperationOutcome', 'malformed URI: an OperationOutcome');
    is($j->{issue}[0]{code}, 'invalid', 'malformed URI: invalid');
    ($head, $body) = $raw->("GET /fhir/datica/Patient/" . ('a' x 20000) . " HTTP/1.1\r\nHost: x\r\n\r\n");
    like($head, qr{^HTTP/1\.1 414}, 'URI too long: 414');
    is(eval { JSON::PP->new->decode($body)->{issue}[0]{code} }, 'too-long', 'URI too long: an OperationOutcome, too-long');
    ($head, $body) = $raw->("GET /fhir/datica/metadata HTTP/1.1\r\nHost: x\r\nX-Big: " . ('b' x 9000) . "\r\n\r\n");
    like($head, qr{^HTTP/1\.1 400}, 'header too large: 400');
    is(eval { JSON::PP->new->decode($body)->{resourceType} }, 'OperationOutcome', 'header too large: an OperationOutcome');
    # an error nginx logs before the gateway's handler runs (the body is
    # refused as the location is chosen): the error log names the request
    # by its id, never by its request line (a search's terms are PHI)
    ($head, $body) = $raw->("GET /fhir/datica/Patient?family=Xylophanes HTTP/1.1\r\nHost: x\r\n"
                            . "Content-Length: 2000000\r\n\r\n");
    like($head, qr{^HTTP/1\.1 413}, 'a body over the limit, announced: 413');
    my ($rid) = $head =~ /X-Request-Id: (\w+)/i;
    select(undef, undef, undef, 0.2);
    my ($line) = reverse grep { /too large body/ } split /\n/, $g->error_log;
    like($line // '', qr/request_id: \Q${\($rid \/\/ 'none')}\E/, 'the refusal is logged with the request id');
    ok($line && $line !~ /Xylophanes|request: "/, '... without the request line');
    my $r = HTTP::Tiny->new->get("$u/_fhir_error");
    is($r->{status}, 404, 'the error location is internal');
    select(undef, undef, undef, 0.3);
    is(-s $audit, $before, 'nginx refusals are not audited (no read event)');
    # the caller's Host goes into the URLs of the response: one that is no
    # host name (nginx lets a quote or a backslash through) is refused
    for my $host ('a"b', 'a\\b', 'x{y}') {
        ($head, $body) = $raw->("GET /fhir/datica/metadata HTTP/1.1\r\nHost: $host\r\nConnection: close\r\n\r\n");
        like($head, qr{^HTTP/1\.1 400}, "Host $host: 400");
        like(eval { JSON::PP->new->decode($body)->{issue}[0]{diagnostics} } // '', qr/the Host header is not a host name/,
             "Host $host: an OperationOutcome that says why");
    }
    ($head, $body) = $raw->("GET /fhir/datica/metadata HTTP/1.1\r\nHost: [::1]:8080\r\nConnection: close\r\n\r\n");
    like($head, qr{^HTTP/1\.1 200}, 'Host [::1]:8080: served');
}

# the caller's own Authorization (here the gateway's token for the caller)
# never reaches the partner: the partner's token does (the mock answers 401
# to anything else)
{
    my $r = http_get("$u/fhir/datica/Patient/smart-1288992");
    ok($g->token_for('datica'), 'the caller has a gateway token');
    is($r->{status}, 200, 'caller Authorization replaced by the partner token');
}

# without a token, nothing: not even which partners exist
{
    my $r = HTTP::Tiny->new->get("$u/fhir/datica/Patient/smart-1288992");
    is($r->{status}, 401, 'no token: 401');
    $r = HTTP::Tiny->new->get("$u/fhir/nosuchpartner/Patient/1");
    is($r->{status}, 401, 'no token, unknown partner: 401 as well');
}

# path routing errors, on a gateway without caller authentication
my $open = start_gateway(name => 'routing-open', env => { AUTH => 'off' },
                        extra_http => "fhir_public_url https://fhir.hospital.example/fhir;\n");
{
    my $pfx = $open->prefix;
    my $t = `$FhirTest::NGINX -t -p $pfx -c $pfx/conf/nginx.conf 2>&1`;
    like($t, qr/\[warn\].*"fhir_gateway on" without "fhir_auth on"/,
         'nginx -t warns about a gateway without caller authentication');
}

# unknown partner: 404 OperationOutcome
{
    my $u = $open->url;
    my $r = http_get("$u/fhir/nosuchpartner/Patient/1");
    is($r->{status}, 404, 'unknown partner is 404');
    like($r->{headers}{'content-type'}, qr{^application/fhir\+json}, '404 is FHIR JSON');
    my $j = json_of($r);
    is($j->{resourceType}, 'OperationOutcome', '404 body is an OperationOutcome');
    is($j->{issue}[0]{code}, 'not-found', 'issue code not-found');
    is($r->{headers}{'cache-control'}, 'no-store', '404 has no-store');
}

# behind a load balancer: links and fullUrls use fhir_public_url
{
    my $r = http_get($open->url . "/fhir/datica/Observation?patient=smart-1288992&_count=2");
    my $b = json_of($r);
    like($b->{entry}[0]{fullUrl}, qr{^https://fhir\.hospital\.example/fhir/datica/Observation/},
         'fhir_public_url: fullUrl on the public base');
    my ($next) = grep { $_->{relation} eq 'next' } @{ $b->{link} };
    like($next->{url}, qr{^https://fhir\.hospital\.example/fhir/datica/Observation\?},
         'fhir_public_url: next link on the public base');
}

# no partner at all in the path
{
    my $u = $open->url;
    my $r = http_get("$u/fhir/");
    is($r->{status}, 404, 'no partner in path is 404');
    is(json_of($r)->{resourceType}, 'OperationOutcome', '... as an OperationOutcome');
}

# writes are refused: the gateway serves reads
{
    my $r = HTTP::Tiny->new->request('DELETE', "$u/fhir/redox/Patient/smart-1288992",
        { headers => { Authorization => 'Bearer ' . $g->token_for('redox') } });
    is($r->{status}, 405, 'DELETE is 405');
    is(json_of($r)->{issue}[0]{code}, 'not-supported', '405 OperationOutcome');
}

# partner timeout: 504 OperationOutcome (the mock never answers _fault-stall)
{
    my $r = http_get("$u/fhir/redox/Patient/_fault-stall");
    is($r->{status}, 504, 'stalled partner is 504');
    my $j = json_of($r);
    is($j->{resourceType}, 'OperationOutcome', '504 body is an OperationOutcome');
    is($j->{issue}[0]{code}, 'timeout', 'issue code timeout');
}

# the partner stalls mid-body before any entry is complete: nothing went out
# yet, so the caller still gets an OperationOutcome, not an empty reply
{
    my $r = http_get("$u/fhir/redox/Patient/_fault-stallbody");
    is($r->{status}, 502, 'partner stalling mid-body before the first entry: 502');
    is(json_of($r)->{resourceType}, 'OperationOutcome', '... as an OperationOutcome');
    like($g->error_log, qr/partner "redox" broke off before it was complete; 502 sent instead/,
         '... and the error log says what happened');
}

# partner unreachable: 502 OperationOutcome
{
    $g->kill_mock('infor');
    my $r = http_get("$u/fhir/infor/Patient/smart-1288992");
    is($r->{status}, 502, 'unreachable partner is 502');
    my $j = json_of($r);
    is($j->{resourceType}, 'OperationOutcome', '502 body is an OperationOutcome');
    is($j->{issue}[0]{severity}, 'fatal', 'severity fatal');
    # the other partners are still served
    is(http_get("$u/fhir/datica/Patient/smart-1288992")->{status}, 200,
       'other partners still served');
}

# no PHI in the error log at the default level, and no temp files
{
    my $log = $g->error_log;
    unlike($log, qr/Adams/, 'no patient name in the error log');
    my @tmp = glob($g->prefix . '/tmp/proxy/*');
    is(scalar @tmp, 0, 'no proxy temp files');
}

done_testing();
