# Large Bundles stream through the gateway whole, to a fast and to a slow
# client (back-pressure without stalls), and the resource-size limit holds
# (issue 4).
use strict;
use warnings;
use Test::More;
use lib 't/lib';
use FhirTest qw(start_gateway http_get json_of free_port);
use IO::Socket::INET;
use Socket qw(SOL_SOCKET SO_RCVBUF);
use Time::HiRes qw(time sleep);
use HTTP::Tiny;

# small output buffers, so that a slow client really fills them; and a
# second server whose proxy buffers are few and small (the partner's
# Bundle spreads over all of them)
my $small_port = free_port();
# and a partner serving a 9 MB DSTU2 searchset from a file (the sample
# Observations, as scripts/bench builds its own), for a caller that stops
# reading
my ($big_port, $big_up) = (free_port(), free_port());
my $big_n = 10000;
my $big_dir = FhirTest::top_dir() . '/build/t/streaming-big';
{
    require File::Path;
    File::Path::make_path("$big_dir/fhir");
    my $js = JSON::PP->new;
    my @obs;
    for my $f (sort glob(FhirTest::top_dir() . '/t/data/corpus/dstu2/*.json')) {
        open my $fh, '<', $f or die $!;
        local $/;
        push @obs, map { $_->{resource} }
                   grep { $_->{resource}{resourceType} eq 'Observation' } @{ $js->decode(<$fh>)->{entry} };
    }
    my @enc = map { $js->encode({ resource => $_ }) } @obs;
    # and a small one, for byte ranges
    # an Observation whose subject is written with JSON escapes
    File::Path::make_path("$big_dir/fhir/Observation");
    open my $es, '>', "$big_dir/fhir/Observation/esc1" or die $!;
    print $es '{"resourceType":"Observation","id":"esc1","status":"final","code":{"text":"x"},'
        . '"subject":{"reference":"Patient\\/esc\\u002d1"}}';
    close $es;
    open my $sm, '>', "$big_dir/fhir/Small.json" or die $!;
    print $sm '{"resourceType":"Bundle","type":"searchset","total":3,"entry":['
        . join(',', @enc[0 .. 2]) . ']}';
    close $sm;
    open my $o, '>', "$big_dir/fhir/Observation.json" or die $!;
    print $o '{"resourceType":"Bundle","type":"searchset","total":' . $big_n . ',"entry":['
        . join(',', map { $enc[$_ % @enc] } 0 .. $big_n - 1) . ']}';
    close $o;
}
my $top = FhirTest::top_dir();
my $g = start_gateway(name => 'streaming', extra_http => <<"CONF");
fhir_buffers 2 4k;
gzip on; gzip_types application/fhir+json; gzip_min_length 1000;
fhir_partner big { url http://127.0.0.1:$big_up/fhir; version dstu2; }
server {
    listen 127.0.0.1:$big_up;
    location /fhir/ {
        root $big_dir; default_type "application/json+fhir";
        add_header Content-MD5 "bWQ1"; add_header Digest "sha-256=c2hh";
        add_header Content-Digest "sha-256=:c2hh:"; add_header Repr-Digest "sha-256=:c2hh:";
        add_header Link '<http://127.0.0.1:$big_up/fhir/Observation.json?page=2>; rel="next"';
        add_header Strict-Transport-Security "max-age=1; includeSubDomains";
        add_header Alt-Svc 'h3=":443"'; add_header Clear-Site-Data '"*"';
        add_header Access-Control-Allow-Origin "*"; add_header X-Powered-By "PartnerStack 1.0";
        add_header Content-Security-Policy "default-src 'none'";
    }
    location = /fhir/Moved.json {
        return 301 https://user:pw\@elsewhere.example:8443/fhir/Patient/secret-77?x=1;
    }
    location = /fhir/PathLoc.json {
        default_type "application/json+fhir";
        add_header Location /fhir/MedicationOrder/pl-1/_history/1;
        add_header Content-Location /fhir/MedicationOrder/pl-1;
        return 201 '{"resourceType":"MedicationOrder","id":"pl-1"}';
    }
    location = /fhir/PathOut.json {
        default_type "application/json+fhir";
        add_header Location /other/Patient/secret-79;
        add_header Content-Location /other/Patient/secret-79;
        return 201 '{"resourceType":"Patient","id":"secret-79"}';
    }
    location = /fhir/Here.json {
        absolute_redirect off; add_header Content-Location /fhir/Patient/secret-78;
        return 302 /fhir/Patient/secret-78;
    }
}
log_format peak '\$request_uri \$status \$fhir_buffers_peak';
server {
    listen 127.0.0.1:$big_port;
    access_log logs/peak.log peak;
    add_header X-Server-Level "kept" always;
    location /notgw/ { include $top/conf/fhir_proxy.conf; }
    location /wide/ {
        fhir_gateway on;
        fhir_auth off;
        fhir_buffers 64 64k;
        include $top/conf/fhir_proxy.conf;
    }
    location /fhir/ {
        fhir_gateway on;
        fhir_auth off;
        include $top/conf/fhir_proxy.conf;
    }
}
server {
    listen 127.0.0.1:$small_port;
    location /fhir/ {
        fhir_gateway on;
        fhir_auth off;
        proxy_pass \$fhir_upstream_url;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Authorization \$fhir_partner_authorization;
        proxy_set_header Accept-Encoding identity;
        proxy_buffer_size 1k;
        proxy_buffers 2 1k;
        proxy_busy_buffers_size 1k;
        proxy_max_temp_file_size 0;
        proxy_read_timeout 30s;
    }
}
CONF
my $u = $g->url;

# HEAD to a location without proxy_method: the partner answers HEAD itself,
# headers only, and the gateway passes the headers a GET would get (R4
# content type, no Content-Length) without waiting for a body to convert
{
    my $r = HTTP::Tiny->new(timeout => 10)->head("http://127.0.0.1:$small_port/fhir/datica/Patient/smart-1288992");
    is($r->{headers}{'x-mock-method'}, 'HEAD', 'HEAD: the partner was asked with HEAD');
    is($r->{status}, 200, 'HEAD answered by the partner: 200');
    like($r->{headers}{'content-type'} // '', qr{^application/fhir\+json; fhirVersion=4\.0},
         'HEAD answered by the partner: R4 content type');
    ok(!exists $r->{headers}{'content-length'}, 'HEAD answered by the partner: no Content-Length');
    unlike($g->error_log, qr/cannot be converted/, 'HEAD answered by the partner: nothing to convert');
}

# a fast client: about 1000 entries, complete and valid
{
    my $t0 = time;
    my $r = http_get("$u/fhir/datica/Observation?_count=1000");
    is($r->{status}, 200, 'large searchset: 200');
    my $b = json_of($r);
    ok($b, 'large searchset: valid JSON (' . length($r->{content}) . ' bytes)');
    is(scalar @{ $b->{entry} || [] }, 1000, 'all 1000 entries arrived');
    ok(time - $t0 < 10, 'in reasonable time');
    ok(!exists $r->{headers}{'content-length'}, 'streamed (no Content-Length)');
}

# compressed for a caller that asks, when the hospital's nginx has gzip on
# for the R4 type (gzip_types compares the media type without parameters)
{
    my $url = "$u/fhir/datica/Observation?patient=smart-1288992&_count=50";
    my $plain = http_get($url);
    my $r = http_get($url, 'Accept-Encoding' => 'gzip');
    is($r->{headers}{'content-encoding'} // '', 'gzip', 'gzip_types application/fhir+json: compressed');
    require IO::Uncompress::Gunzip;
    my $out;
    IO::Uncompress::Gunzip::gunzip(\$r->{content} => \$out);
    my ($a, $b) = (json_of({ content => $out // '' }), json_of($plain));
    delete $_->{id} for grep { ref } $a, $b;   # the mock's Bundle id differs per request
    ok(ref $a && length($r->{content}) < length($plain->{content}) / 4, '... to less than a quarter');
    is_deeply($a, $b, '... and the same Bundle once uncompressed');
}

# a slow client with a tiny receive window: the gateway must wait for it and
# then go on, never stall and never drop bytes
{
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $g->{port},
                                  Proto => 'tcp') or die $!;
    # (a window far below 16k runs into TCP's 200 ms persist timer on every
    # segment, plain nginx alike; 16k keeps the test short)
    setsockopt($s, SOL_SOCKET, SO_RCVBUF, 16384);
    my $tok = $g->token_for('datica');
    print $s "GET /fhir/datica/Observation?_count=1000 HTTP/1.0\r\nHost: x\r\n"
           . "Authorization: Bearer $tok\r\n\r\n";
    my ($data, $buf) = ('');
    my $t0 = time;
    while (time - $t0 < 60) {
        my $n = sysread($s, $buf, 2048);
        last if !$n;
        $data .= $buf;
        sleep 0.002 if length($data) < 400_000;   # slow at first
    }
    my ($head, $body) = split /\r\n\r\n/, $data, 2;
    like($head, qr{^HTTP/1\.1 200}, 'slow client: 200');
    my $b = eval { JSON::PP->new->decode($body) };
    ok($b, 'slow client: the whole body is valid JSON (' . length($body) . ' bytes)');
    is(scalar @{ $b->{entry} || [] }, 1000, 'slow client: all entries');
}

# a caller that stops reading: the worker stops converting and reading the
# partner (what is in flight to the caller is bounded by fhir_buffers, the
# partner's bytes stay unconsumed until their conversion has left, and
# nginx's proxy stops handing the filter more while the caller's socket is
# full), so its memory grows by little more than the proxy's buffers while
# the caller waits, never by the 9 MB Bundle; the whole Bundle arrives once
# it reads
sub worker_rss {
    open my $fh, '<', "$g->{prefix}/logs/nginx.pid" or return 0;
    chomp(my $master = <$fh>);
    my ($w) = grep { /^\d+$/ } split /\s+/, `pgrep -P $master`;
    open my $st, '<', "/proc/$w/status" or return 0;
    while (<$st>) { return $1 if /^VmRSS:\s+(\d+)/ }
    return 0;
}
# (returns the socket, unread, and how much more the worker holds)
sub stalled_caller {
    my ($path) = @_;
    my $before = worker_rss();
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $big_port,
                                  Proto => 'tcp') or die $!;
    setsockopt($s, SOL_SOCKET, SO_RCVBUF, 16384);
    print $s "GET $path HTTP/1.0\r\nHost: x\r\n\r\n";
    sleep 2;
    return ($s, $before > 0 ? worker_rss() - $before : undef);
}
{
    my ($s, $held) = stalled_caller('/fhir/big/Observation.json');
    ok(defined $held && $held < 4096,
       "a caller that stops reading: the worker holds " . ($held // '?') . " KB more, not the Bundle");
    my ($data, $buf) = ('');
    while (sysread($s, $buf, 1 << 20)) { $data .= $buf }
    my (undef, $body) = split /\r\n\r\n/, $data, 2;
    # (9 MB: counted rather than decoded; the other cases decode theirs)
    my $n = () = ($body // '') =~ /\{"resource":\{/g;
    ok($n == $big_n && $body =~ /\]\}\z/,
       "a caller that stops reading: then all $big_n entries, to the end ($n)");
}

# what was in flight at most ($fhir_buffers_peak, in the access log): with
# fhir_buffers 2 4k, some 8k and what one feed of 4k converts to (a whole
# 64k proxy buffer converted at once held 256k), and a location that
# allows 64 64k uses more of what it allows (the proxy's 8 64k buffers
# read ahead are what it then has at hand), never the Bundle
{
    my ($s) = stalled_caller('/wide/big/Observation.json');
    my ($data, $buf) = ('');
    while (sysread($s, $buf, 1 << 20)) { $data .= $buf }
    my $n = () = $data =~ /\{"resource":\{/g;
    is($n, $big_n, 'fhir_buffers 64 64k, a caller that stops reading: then all the entries');
    sleep 0.3;
    my %peak = map { /^(\S+) 200 (\d+)$/ ? ($1 => $2) : () }
               do { open my $fh, '<', "$g->{prefix}/logs/peak.log" or die $!; <$fh> };
    my ($narrow, $wide) = @peak{'/fhir/big/Observation.json', '/wide/big/Observation.json'};
    ok(defined $narrow && $narrow >= 8192 && $narrow <= 65536,
       'fhir_buffers 2 4k: at most ' . ($narrow // '?') . ' bytes of output in flight and at hand');
    ok(defined $wide && defined $narrow && $wide > 4 * $narrow && $wide <= 64 * 65536,
       'fhir_buffers 64 64k: ' . ($wide // '?') . ' bytes, within its own bound');
}

# the partner sends two entries and then holds the rest back until the test
# releases it: the caller must already have those two, converted (the gateway
# streams entry by entry and sends what it has; it does not wait for more)
{
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $g->{port},
                                  Proto => 'tcp') or die $!;
    my $tok = $g->token_for('redox');
    print $s "GET /fhir/redox/Patient/_fault-gatedbundle HTTP/1.0\r\nHost: x\r\n"
           . "Authorization: Bearer $tok\r\n\r\n";
    my ($data, $buf, $rin) = ('');
    my $deadline = time + 15;
    while ($data !~ /"gate-1"/ && time < $deadline) {
        vec($rin = '', fileno($s), 1) = 1;
        next unless select(my $rout = $rin, undef, undef, 0.5);
        my $n = sysread($s, $buf, 65536);
        last if !$n;
        $data .= $buf;
    }
    like($data, qr/"id":"gate-0".*"id":"gate-1"/s,
         'gated Bundle: the first entries reach the caller while the partner holds the rest');
    like($data, qr/"name":\[\{"family":"Gated"/, '... converted');
    unlike($data, qr/gate-2/, '... and nothing the partner has not sent');
    my $rel = http_get("$u/fhir/redox/Patient/_fault-release");
    is(json_of($rel)->{active}, JSON::PP::true, 'the partner released the rest');
    while (time < $deadline) {
        my $n = sysread($s, $buf, 65536);
        last if !$n;
        $data .= $buf;
    }
    my (undef, $body) = split /\r\n\r\n/, $data, 2;
    my $b = eval { JSON::PP->new->decode($body) };
    is(join(',', map { $_->{resource}{id} } @{ $b->{entry} || [] }), 'gate-0,gate-1,gate-2,gate-3',
       'gated Bundle: whole and in order once released');
}

# the partner has sent a whole Bundle but not yet the end of its response:
# the converted document's last bytes wait for that end and leave with it,
# in one write with the response's last chunk (not in two: the caller's
# HTTP client could not take the response as complete before it anyway).
sub gated_end {
    my ($port, $what, $auth) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp') or die $!;
    print $s "GET /fhir/redox/Patient/_fault-gatedend HTTP/1.1\r\nHost: x\r\n"
           . ($auth ? "Authorization: Bearer " . $g->token_for('redox') . "\r\n" : '') . "\r\n";
    my ($data, $buf, $rin) = ('');
    # what reaches the caller within a second and a half (the partner
    # holds its end)
    my $until = time + 1.5;
    while (time < $until) {
        vec($rin = '', fileno($s), 1) = 1;
        next unless select(my $rout = $rin, undef, undef, 0.25);
        my $n = sysread($s, $buf, 65536);
        last if !$n;
        $data .= $buf;
    }
    unlike($data, qr/"end-99"/, "$what: whole Bundle, open response: its last bytes wait for the end");
    my $rel = http_get("$u/fhir/redox/Patient/_fault-release");
    is(json_of($rel)->{active}, JSON::PP::true, "$what: the partner ended its response");
    # the end follows at once
    my $deadline = time + 10;
    while ($data !~ /\r\n0\r\n\r\n\z/ && time < $deadline) {
        vec($rin = '', fileno($s), 1) = 1;
        next unless select(my $rout = $rin, undef, undef, 0.5);
        my $n = sysread($s, $buf, 65536);
        last if !$n;
        $data .= $buf;
    }
    my ($head, $chunked) = split /\r\n\r\n/, $data, 2;
    like($head // '', qr/^HTTP\/1.1 200.*\r\nTransfer-Encoding: chunked/si, "$what: a chunked 200");
    my $body = '';
    while (($chunked // '') =~ /\G([0-9a-f]+)\r\n/gci) {
        my $len = hex $1;
        last if $len == 0;
        $body .= substr($chunked, pos($chunked), $len);
        pos($chunked) = pos($chunked) + $len + 2;
    }
    my $b = eval { JSON::PP->new->decode($body) };
    is(join(',', map { $_->{resource}{id} } @{ $b->{entry} || [] }),
       join(',', map { "end-$_" } 0 .. 99), "$what: then whole, with the last chunk");
    close $s;
}
gated_end($g->{port}, 'gated end', 1);
# (with small proxy buffers, nginx's pipe itself keeps the last, partly
# filled buffer until the partner's end: this run checks that a Bundle
# spread over them arrives whole, not the filter's waiting)
gated_end($small_port, 'gated end, small proxy buffers', 0);

# the converted body has new bytes and a new length: the partner's strong
# ETag (nginx serving the file sends one) reaches the caller weakened, and
# no Content-Length is passed on (the body is sent chunked)
{
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $big_port, Proto => 'tcp')
        or die $!;
    print $s "HEAD /fhir/big/Observation.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    my $h = join '', <$s>;
    my $direct = HTTP::Tiny->new->head("http://127.0.0.1:$big_up/fhir/Observation.json");
    like($direct->{headers}{etag} // '', qr/^"/, 'the partner sends a strong ETag');
    like($h, qr/^HTTP\/1\.1 200/, 'HEAD through the gateway: 200');
    like($h, qr/^ETag: W\/"/mi, 'the ETag reaches the caller weakened');
    unlike($h, qr/^Content-Length:/mi, 'no Content-Length from the partner');

    # nor do the partner's digests of its body fit the converted body
    my @dg = qw(content-md5 digest content-digest repr-digest);
    is(scalar(grep { exists $direct->{headers}{$_} } @dg), 4, 'the partner sends four digests of its body');
    unlike($h, qr/^(Content-MD5|Digest|Content-Digest|Repr-Digest):/mi, 'none reaches the caller (HEAD)');
    ok(exists $direct->{headers}{link}, 'the partner sends a Link to its own URL');
    unlike($h, qr/^Link:/mi, 'it does not reach the caller');
    my $r = HTTP::Tiny->new->get("http://127.0.0.1:$big_port/fhir/big/Small.json");
    is($r->{status}, 200, 'GET of a converted body: 200');
    is(scalar(grep { exists $r->{headers}{$_} } @dg), 0, '... without the partner\'s digests');

    # the server's add_header lines still apply in the gateway's location
    # (fhir_proxy.conf has none of its own), and the module adds the id
    is($r->{headers}{'x-server-level'}, 'kept', 'the server\'s add_header reaches the caller');
    like($r->{headers}{'x-request-id'} // '', qr/^[0-9a-f]{32}$/, '... and so does X-Request-Id');
    # the partner's policy headers for a browser are the hospital's to set
    my @pol = qw(strict-transport-security alt-svc clear-site-data access-control-allow-origin
                 x-powered-by content-security-policy);
    is(scalar(grep { exists $direct->{headers}{$_} } @pol), scalar @pol, 'the partner sends policy headers');
    is(join(',', grep { exists $r->{headers}{$_} } @pol), '', '... none reaches the caller');
}

# a conditional GET: the partner's 304 carries its ETag weakened too, as
# the 200 did, so that the caller's validator stays the same
{
    my $r = HTTP::Tiny->new->get("http://127.0.0.1:$big_port/fhir/big/Small.json");
    my $etag = $r->{headers}{etag} // '';
    like($etag, qr/^W\/"/, 'a converted 200 has a weak ETag');
    $r = HTTP::Tiny->new->get("http://127.0.0.1:$big_port/fhir/big/Small.json",
                              { headers => { 'If-None-Match' => $etag } });
    is($r->{status}, 304, 'If-None-Match with it: the partner\'s 304 passes');
    is($r->{headers}{etag} // '', $etag, '... with the same weak ETag');
    # a read of the copy the caller holds: audited as a successful read
    my $rid = $r->{headers}{'x-request-id'} // 'none';
    select(undef, undef, undef, 0.2);
    my ($rec) = grep { ($_->{request_id} // "") eq $rid }
                map { JSON::PP->new->decode($_) }
                do { open my $fh, '<', $g->prefix . '/logs/audit.log' or die $!; <$fh> };
    is($rec && "$rec->{status} $rec->{outcome}", '304 success', '... audited as a successful read');
}

# the patient of a read comes from the partner's resource, its JSON escapes
# decoded ("Patient\/esc\u002d1" is patient esc-1)
{
    my $r = HTTP::Tiny->new->get("http://127.0.0.1:$big_port/fhir/big/Observation/esc1");
    is($r->{status}, 200, 'a read whose subject is written with escapes: 200');
    my $rid = $r->{headers}{'x-request-id'} // 'none';
    select(undef, undef, undef, 0.2);
    my ($rec) = grep { ($_->{request_id} // "") eq $rid }
                map { JSON::PP->new->decode($_) }
                do { open my $fh, '<', $g->prefix . '/logs/audit.log' or die $!; <$fh> };
    is($rec && $rec->{patient}, 'esc-1', '... audited with the patient the reference names');
}

# a caller's byte range: a range of the converted body is not a range of the
# partner's.  fhir_proxy.conf does not pass Range (nor If-Range), so the partner
# sends the whole body and the caller gets it whole, 200; a location
# without it gets the partner's 206, which cannot be converted: a 502
{
    my $direct = HTTP::Tiny->new->get("http://127.0.0.1:$big_up/fhir/Small.json",
                                      { headers => { Range => 'bytes=0-99' } });
    is($direct->{status}, 206, 'the partner answers a Range with 206');

    my $r = HTTP::Tiny->new->get("http://127.0.0.1:$big_port/fhir/big/Small.json",
                                 { headers => { Range => 'bytes=0-99' } });
    is($r->{status}, 200, 'Range through fhir_proxy.conf: 200, the whole body');
    my $b = json_of($r);
    is(scalar @{ $b->{entry} || [] }, 3, '... all of it, converted');
    ok(!exists $r->{headers}{'content-range'} && !exists $r->{headers}{'accept-ranges'},
       '... with no Content-Range or Accept-Ranges');

    $r = HTTP::Tiny->new->get("http://127.0.0.1:$small_port/fhir/big/Small.json",
                              { headers => { Range => 'bytes=0-99' } });
    is($r->{status}, 502, 'a 206 from the partner (Range not cleared): 502');
    is(json_of($r)->{resourceType}, 'OperationOutcome', '... as an OperationOutcome');
    ok(!exists $r->{headers}{'content-range'}, '... without the partner\'s Content-Range');
    ok(!exists $r->{headers}{'content-md5'} && !exists $r->{headers}{'repr-digest'},
       '... or its digests');
    like($g->error_log, qr/partner "big" answered 206 .*fhir_proxy\.conf/,
         '... and the error log says why');
}

# a partner that redirects (an http:// url where it wants https://, an old
# base): not followed; a 502 that says so, and the error log names where
# to, without the path (it may name a patient) or any user information
{
    my $r = HTTP::Tiny->new(max_redirect => 0)->get("http://127.0.0.1:$big_port/fhir/big/Moved.json");
    is($r->{status}, 502, 'a partner\'s redirect: 502');
    like(json_of($r)->{issue}[0]{diagnostics} // '', qr/redirected/, '... an OperationOutcome that says so');
    ok(!exists $r->{headers}{location}, '... with no Location');
    $r = HTTP::Tiny->new(max_redirect => 0)->get("http://127.0.0.1:$big_port/fhir/big/Here.json");
    is($r->{status}, 502, 'a partner\'s redirect to a path: 502');
    ok(!exists $r->{headers}{location}, '... with no Location either (nginx keeps a relative one aside)');
    ok(!exists $r->{headers}{'content-location'}, '... nor the partner\'s Content-Location');
    my $log = $g->error_log;
    like($log, qr/partner "big" answered 301, a redirect to https:\/\/elsewhere\.example:8443, which the gateway does not follow/,
         'the error log names the origin of the redirect');
    like($log, qr/partner "big" answered 302, a redirect to a path on the partner's server/,
         '... or says it is a path');
    unlike($log, qr/secret-7[78]|user:pw/, '... and never the path or user information');
}

# a converted answer whose Location and Content-Location are paths on the
# partner's server (nginx's upstream module keeps a Location that starts
# with a slash out of headers_out.location): under the partner's base, the
# gateway's route (and the DSTU2 type renamed); outside it, hidden
{
    my $r = HTTP::Tiny->new(max_redirect => 0)->get("http://127.0.0.1:$big_port/fhir/big/PathLoc.json");
    is($r->{status}, 201, 'a converted answer with path Locations: the partner\'s status');
    is(json_of($r)->{resourceType}, 'MedicationRequest', '... converted');
    is($r->{headers}{location}, "http://127.0.0.1:$big_port/fhir/big/MedicationRequest/pl-1/_history/1",
       '... its Location path on the gateway\'s route');
    is($r->{headers}{'content-location'}, "http://127.0.0.1:$big_port/fhir/big/MedicationRequest/pl-1",
       '... and its Content-Location path');
    $r = HTTP::Tiny->new(max_redirect => 0)->get("http://127.0.0.1:$big_port/fhir/big/PathOut.json");
    is($r->{status}, 201, 'paths outside the partner\'s base: the partner\'s status');
    ok(!exists $r->{headers}{location} && !exists $r->{headers}{'content-location'},
       '... with neither header, which would name nothing at the gateway');
}

# fhir_proxy.conf in a location without "fhir_gateway on": nginx cannot
# proxy (500), and the error log says what is wrong, not only nginx's
# 'invalid URL prefix'
{
    my $r = HTTP::Tiny->new->get("http://127.0.0.1:$big_port/notgw/Patient/x");
    is($r->{status}, 500, 'fhir_proxy.conf outside a gateway location: 500');
    like($g->error_log, qr/\$fhir_upstream_url is empty in a location without "fhir_gateway on"/,
         '... and the error log says why');
}

# a second request on the same worker still works
is(http_get("$u/fhir/redox/Patient/smart-1288992")->{status}, 200, 'the worker goes on serving');
$g->stop;

# one resource larger than fhir_max_resource_size (the Synthea patients with
# their extensions are about 3.5 KB; 2k is the limit here)
my $small = start_gateway(name => 'streaming-limit', extra_http => "fhir_max_resource_size 2k;\n");
{
    my $su = $small->url;
    my $r = http_get("$su/fhir/redox/Patient/smart-1288992");
    is($r->{status}, 200, 'a small resource passes the limit');

    $r = http_get("$su/fhir/redox/Patient/1accf981-bba1-4c3a-ba51-98092ce53559");
    is($r->{status}, 502, 'a resource over the limit: 502 before anything went out');
    is(json_of($r)->{resourceType}, 'OperationOutcome', '... as an OperationOutcome');
    like($small->error_log, qr/resource larger than the limit of 2048 bytes/,
         '... and the error log says why');

    # in a Bundle whose first entries are still held with the header (they
    # arrived in the same buffer): still a 502; once bytes went out it would
    # be an abort, see the _fault-truncated case in 02-conversion.t
    $r = http_get("$su/fhir/redox/Patient?_count=50");
    is($r->{status}, 502, 'a Bundle with an entry over the limit, nothing sent yet: 502');
}

done_testing();
