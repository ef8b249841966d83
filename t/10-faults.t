# The fault matrix: each bad partner answer and a caller that leaves mid-way
# gives the right status or an abort, an error-log line, an audit outcome,
# and the worker goes on serving; 1000 repetitions leave the worker's memory
# and descriptors flat (issue 7).
use strict;
use warnings;
use Test::More;
use lib 't/lib';
use FhirTest qw(start_gateway http_get json_of free_port top_dir);
use IO::Socket::INET;
use JSON::PP;

# a second server speaks HTTP/2 (cleartext, prior knowledge) to its callers
my $h2_port = free_port();
my $top = top_dir();
my $g = start_gateway(name => 'faults', read_timeout => '1s', workers => 1, extra_http => <<"CONF");
server {
    listen 127.0.0.1:$h2_port http2;
    location /fhir/ {
        fhir_gateway on;
        fhir_auth off;
        include $top/conf/fhir_proxy.conf;
        proxy_read_timeout 1s;
    }
}
CONF
my $u = $g->url;
my $pid = 'smart-1288992';

sub audit_of {
    my ($rid) = @_;
    select(undef, undef, undef, 0.2);
    open my $fh, '<', $g->prefix . '/logs/audit.log' or return undef;
    my ($r) = grep { ($_->{request_id} // '') eq $rid } map { JSON::PP->new->decode($_) } <$fh>;
    return $r;
}

my @matrix = (
    # id, expected status (599: aborted), error-log pattern, audit outcome
    [ '_fault-html',      502, qr/answered 200 with Content-Type "text\/html"/,           'upstream_error' ],
    [ '_fault-500',       500, undef,                                                    'upstream_error' ],
    [ '_fault-busy',      429, qr/partner "redox" answered 429 \(too many requests\), Retry-After: 7/, 'upstream_error' ],
    [ '_fault-down',      503, qr/partner "redox" answered 503 \(unavailable\), Retry-After: 30/, 'upstream_error' ],
    [ '_fault-broken',    502, qr/cannot be converted: truncated JSON/,                   'upstream_error' ],
    [ '_fault-utf8',      502, qr/cannot be converted: invalid UTF-8/,                    'upstream_error' ],
    [ '_fault-dupkey',    502, qr/cannot be converted: duplicate key/,                    'upstream_error' ],
    [ '_fault-deep',      502, qr/cannot be converted: JSON nested (deeper than 64 levels|too deep)/,             'upstream_error' ],
    [ '_fault-bignum',    502, qr/cannot be converted: number too long/,                  'upstream_error' ],
    [ '_fault-gzip',      502, qr/Content-Encoding "gzip"/,                               'upstream_error' ],
    [ '_fault-stall',     504, qr/upstream timed out/,                                    'upstream_error' ],
    [ '_fault-stallbody', 502, qr/broke off before it was complete; 502 sent instead/,    'upstream_error' ],
    [ '_fault-truncated', 599, qr/broke off before it was complete; response aborted/,    'aborted' ],
    [ '_fault-reset',     599, qr/broke off before it was complete; response aborted/,    'aborted' ],
);

my %retry_after = ('_fault-busy' => 7, '_fault-down' => 30);

for my $m (@matrix) {
    my ($id, $status, $log, $outcome) = @$m;
    my $r = http_get("$u/fhir/redox/Patient/$id");
    is($r->{status}, $status, "$id: " . ($status == 599 ? 'aborted' : $status));
    # a partner throttling or down says when to come back: so does the gateway
    is($r->{headers}{'retry-after'}, $retry_after{$id}, "$id: the partner's Retry-After passed on")
        if $retry_after{$id};
    if ($status != 599) {
        is(eval { json_of($r)->{resourceType} }, 'OperationOutcome', "$id: OperationOutcome");
    }
    like($g->error_log, $log, "$id: logged") if $log;
    my $rid = $r->{headers}{'x-request-id'};
    if ($rid) {
        is(audit_of($rid)->{outcome}, $outcome, "$id: audited as $outcome");
    } else {
        # an aborted response may end before its headers are read
        select(undef, undef, undef, 0.2);
        open my $fh, '<', $g->prefix . '/logs/audit.log';
        my @rec = grep { ($_->{resource_id} // '') eq $id } map { JSON::PP->new->decode($_) } <$fh>;
        is($rec[-1]{outcome}, $outcome, "$id: audited as $outcome");
    }
    is(http_get("$u/fhir/datica/Patient/$pid")->{status}, 200, "$id: the worker goes on serving");
}

# the caller leaves in the middle of a Bundle that the partner sends slowly (2 s in all)
{
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $g->{port}) or die;
    my $tok = $g->token_for('redox');
    print $s "GET /fhir/redox/Patient/_fault-slowbundle HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer $tok\r\n\r\n";
    my $buf = '';
    sysread($s, $buf, 4096);
    like($buf, qr/^HTTP\/1.1 200/, 'slow Bundle: streaming has begun');
    close $s;
    my @rec;
    for (1 .. 50) {
        select(undef, undef, undef, 0.1);
        open my $fh, '<', $g->prefix . '/logs/audit.log';
        @rec = grep { ($_->{resource_id} // '') eq '_fault-slowbundle' } map { JSON::PP->new->decode($_) } <$fh>;
        last if @rec;
    }
    is($rec[-1]{outcome}, 'aborted', 'caller disconnect mid-stream: audited as aborted');
    is(http_get("$u/fhir/datica/Patient/$pid")->{status}, 200, 'caller disconnect: the worker goes on serving');
}

# HTTP/2 callers: a Bundle arrives whole; a partner that breaks off before
# the first byte gets them a 502 OperationOutcome, and one that breaks off
# mid-Bundle an aborted stream (RST_STREAM), which no client takes for a
# whole response (curl: exit 92, "stream not closed cleanly")
{
    my $h2 = "http://127.0.0.1:$h2_port/fhir";
    my $curl = sub {
        my ($url) = @_;
        my $body = `curl -s --http2-prior-knowledge -w '\n%{http_version} %{http_code}' '$url'`;
        my $exit = $? >> 8;
        $body =~ s/\n(\S+) (\d+)\z// or return ($exit, '', 0, '');
        return ($exit, $1, $2, $body);
    };
    my ($exit, $ver, $status, $body) = $curl->("$h2/datica/Observation?patient=$pid&_count=100");
    is("$exit $ver $status", '0 2 200', 'HTTP/2: a search is served');
    my $b = eval { JSON::PP->new->decode($body) };
    is(scalar @{ $b->{entry} || [] }, 100, 'HTTP/2: the whole Bundle, valid JSON');
    ($exit, $ver, $status, $body) = $curl->("$h2/redox/Patient/_fault-broken");
    is("$exit $ver $status", '0 2 502', 'HTTP/2: broken JSON before the first byte: 502');
    is(eval { JSON::PP->new->decode($body)->{resourceType} }, 'OperationOutcome', 'HTTP/2: ... an OperationOutcome');
    ($exit) = $curl->("$h2/redox/Patient/_fault-truncated");
    is($exit, 92, 'HTTP/2: a partner breaking off mid-Bundle: the stream is reset, not ended');
    is(http_get("$u/fhir/datica/Patient/$pid")->{status}, 200, 'HTTP/2: the worker goes on serving');
}

# 1000 repetitions of good and bad requests: memory and descriptors stay flat
{
    open my $pf, '<', $g->prefix . '/logs/nginx.pid' or die;
    my $master = <$pf>; chomp $master;
    my ($worker) = grep { /^\d+$/ } split /\s+/, `pgrep -P $master`;
    sub rss { open my $f, '<', "/proc/$_[0]/status" or return 0;
              my ($kb) = map { /^VmRSS:\s+(\d+)/ ? $1 : () } <$f>; return $kb; }
    sub fds { opendir my $d, "/proc/$_[0]/fd" or return 0; return scalar grep { /^\d+$/ } readdir $d; }
    my @ids = qw(_fault-html _fault-broken _fault-utf8 _fault-dupkey _fault-500 _fault-truncated smart-1288992);
    my $round = sub { my ($n) = @_; http_get("$u/fhir/redox/Patient/" . $ids[$_ % @ids]) for 1 .. $n; };
    $round->(100);
    select(undef, undef, undef, 0.5);
    my ($r0, $f0) = (rss($worker), fds($worker));
    $round->(1000);
    select(undef, undef, undef, 0.5);
    my ($r1, $f1) = (rss($worker), fds($worker));
    SKIP: {
        # ASan holds freed memory in its quarantine (256 MB) and valgrind
        # has its own heap: RSS says nothing about the module there
        skip "RSS under a sanitizer or valgrind ($r0 KB -> $r1 KB)", 1
            if ($ENV{FHIR_NGINX} // '') =~ /asan|valgrind/;
        ok($r0 > 0 && $r1 - $r0 < 2048, "1000 repetitions: worker RSS flat ($r0 KB -> $r1 KB)");
    }
    ok(abs($f1 - $f0) <= 2, "1000 repetitions: descriptors flat ($f0 -> $f1)");
}

done_testing();
