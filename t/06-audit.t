# The audit trail: one sealed record per read event (11 kinds), batches,
# denials, upstream errors, aborted streams; the verifier catches edits,
# deletions, reordering and truncation; rotation; file mode; fail-closed;
# 2 workers x 1000 concurrent requests give 1000 whole records (issue 6).
use strict;
use warnings;
use Test::More;
use lib 't/lib';
use FhirTest qw(start_gateway http_get http_post json_of top_dir);
use JSON::PP;
use HTTP::Tiny;
use POSIX ();

my $top = top_dir();
my $verify = "$top/build/fhir-audit-verify";
my $g = start_gateway(name => 'audit', workers => 2);
my $u = $g->url;
my $log = $g->prefix . '/logs/audit.log';
my $key = $g->prefix . '/secrets/audit.key';

sub records {
    my ($file) = @_;
    select(undef, undef, undef, 0.2);
    open my $fh, '<', ($file // $log) or return ();
    my @r;
    while (my $line = <$fh>) {
        my $j = eval { JSON::PP->new->decode($line) };
        push @r, $j // { broken => $line };
    }
    return @r;
}

sub for_request {
    my ($rid) = @_;
    return grep { ($_->{request_id} // '') eq $rid } records();
}

my $pid = 'smart-1288992';
my @cases = (
    [ 'capability.read',   "/fhir/redox/metadata", undef ],
    [ 'patient.search',    "/fhir/datica/Patient?family=adam&_count=5", undef ],
    [ 'patient.read',      "/fhir/datica/Patient/$pid", $pid ],
    [ 'vitals.search',     "/fhir/redox/Observation?patient=$pid&category=vital-signs&_sort=-date&_count=3", $pid ],
    [ 'condition.search',  "/fhir/infor/Condition?patient=$pid&_count=4", $pid ],
    [ 'encounter.search',  "/fhir/dapasoft/Encounter?patient=$pid&_sort=-date&_count=1", $pid ],
    [ 'allergy.search',    "/fhir/datica/AllergyIntolerance?patient=$pid", $pid ],
    [ 'medication.search', "/fhir/infor/MedicationRequest?patient=$pid&_count=2", $pid ],
    [ 'coverage.search',   "/fhir/redox/Coverage?patient=$pid", $pid ],
    [ 'location.read',     "/fhir/datica/Location/loc-ward-4", undef ],
    [ 'resource.read',     "/fhir/datica/Observation/smart-Observation-854-bmi", $pid ],
);

for my $c (@cases) {
    my ($event, $path, $patient) = @$c;
    my $r = http_get("$u$path");
    is($r->{status}, 200, "$event: request served");
    my $rid = $r->{headers}{'x-request-id'};
    ok($rid, "$event: the response names its request id");
    my @rec = for_request($rid);
    is(scalar @rec, 1, "$event: exactly one record");
    my $a = $rec[0] || {};
    is($a->{event}, $event, "$event: event kind");
    is($a->{outcome}, 'success', "$event: outcome");
    is($a->{status}, 200, "$event: status");
    ok($a->{partner}, "$event: partner ($a->{partner})");
    is($a->{patient}, $patient, "$event: patient") if defined $patient;
    ok($a->{ts} && $a->{chain} && $a->{seq} && $a->{hmac}, "$event: when, chain and seal");
    if ($event =~ /search/) {
        ok(defined $a->{query}, "$event: the search parameters");
        my $n = scalar @{ json_of($r)->{entry} || [] };
        is($a->{entries}, $n, "$event: entries returned ($n)");
    }
    ok($a->{bytes} > 0, "$event: bytes returned");
}

# the worker's first record opens its chain: its event and pid, sealed
{
    my ($first) = records();
    is($first->{event}, 'audit.start', "the worker's first record: audit.start");
    ok($first->{pid} && $first->{chain} && $first->{seq} == 1 && $first->{hmac},
       "the worker's first record: pid, chain and seal");
}

# a HEAD read: one record, the read it stands for, with its method and no
# bytes of body
{
    my $r = HTTP::Tiny->new(timeout => 10)->head("$u/fhir/datica/Patient/$pid",
        { headers => { Authorization => 'Bearer ' . $g->token_for('datica') } });
    is($r->{status}, 200, 'HEAD read: 200');
    my @rec = for_request($r->{headers}{'x-request-id'} // 'none');
    is(scalar @rec, 1, 'HEAD read: exactly one record');
    my $a = $rec[0] || {};
    is($a->{event}, 'patient.read', 'HEAD read: patient.read');
    is($a->{method}, 'HEAD', 'HEAD read: method HEAD');
    is($a->{outcome}, 'success', 'HEAD read: success');
    is($a->{bytes}, 0, 'HEAD read: no bytes of body');
}

# a POSTed Patient search: the form body is what was searched
{
    my $r = http_post("$u/fhir/datica/Patient/_search", "family=adam&birthdate=1925-12-23",
                      'Content-Type' => 'application/x-www-form-urlencoded');
    my ($a) = for_request($r->{headers}{'x-request-id'});
    is($a->{event}, 'patient.search', 'POST _search: patient.search');
    is($a->{query}, 'family=adam&birthdate=1925-12-23', 'POST _search: the form is the query');
}

# bytes that are not UTF-8 in the query or the path (raw in the request
# line, which nginx lets through): the record is still UTF-8 JSON, those
# bytes written %XX as a URL would carry them
sub raw_get {
    my ($path) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$g->{port}") or die $!;
    print $s "GET $path HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        . 'Authorization: Bearer ' . FhirTest::token_for($g, 'datica') . "\r\n\r\n";
    my $res = join '', <$s>;
    return $res =~ /^X-Request-Id: (\S+)/mi ? $1 : '';
}
{
    require Encode;
    require IO::Socket::INET;
    for my $t (["/fhir/datica/Patient?family=\xff\xfe&given=Jos\xc3\xa9", 'query',
                "family=%FF%FE&given=Jos\x{e9}"],
               ["/fhir/datica/Patient/x\xc0\xaf", 'resource_id', 'x%C0%AF']) {
        my $rid = raw_get($t->[0]);
        select(undef, undef, undef, 0.2);
        open my $fh, '<', $log or die;
        my @lines = grep { $rid ne '' && /"request_id":"\Q$rid\E"/ } <$fh>;
        is(scalar @lines, 1, "raw bytes in the $t->[1]: one record");
        ok(eval { Encode::decode('UTF-8', my $copy = $lines[0] // '', Encode::FB_CROAK()); 1 },
           "raw bytes in the $t->[1]: the record is valid UTF-8");
        my $j = eval { JSON::PP->new->utf8->decode($lines[0] // '') } // {};
        is($j->{$t->[1]}, $t->[2], "raw bytes in the $t->[1]: written %XX, UTF-8 kept");
    }
}

# a search form of 70,000 bytes: its record carries the first 4,096 and
# says how long it was (a record always fits a syslog datagram)
{
    my $form = 'family=' . ('a' x 70000);
    my $r = http_post("$u/fhir/datica/Patient/_search", $form,
                      'Content-Type' => 'application/x-www-form-urlencoded');
    my @rec = for_request($r->{headers}{'x-request-id'} // 'none');
    is(scalar @rec, 1, 'a huge search form: one record');
    is($rec[0]{query}, 'family=' . ('a' x 4089) . '...(70007 bytes)',
       'a huge search form: its first 4,096 bytes, and its length');
}

# a batch: one record per entry, sharing the batch id
{
    my $batch = '{"resourceType":"Bundle","type":"batch","entry":['
        . qq({"request":{"method":"GET","url":"Patient/$pid"}},)
        . qq({"request":{"method":"GET","url":"Condition?patient=$pid"}},)
        . qq({"request":{"method":"GET","url":"Patient/nobody-here"}}]});
    my $r = http_post("$u/fhir/datica/", $batch, 'Content-Type' => 'application/fhir+json');
    my $rid = $r->{headers}{'x-request-id'};
    my @rec = for_request($rid);
    is(scalar @rec, 3, 'batch: one record per entry');
    is_deeply([ map { $_->{event} } @rec ], [qw(patient.read condition.search patient.read)],
              'batch: each entry its own event, in order');
    is_deeply([ map { $_->{batch_id} } @rec ], [ ($rid) x 3 ], 'batch: shared batch id');
    is($rec[1]{patient}, $pid, 'batch: patient from the search parameter');
    ok($rec[1]{entries} > 0, 'batch: entries of the search');
    is($rec[2]{outcome}, 'upstream_error', 'batch: a failed entry is recorded as failed');
    is($rec[2]{status}, 404, 'batch: with its own status');
}

# a search parameter name written with an escape or the :Patient modifier
# still names the patient for the audit (the partner reads it so)
for my $q ("pati%65nt=$pid&_count=1", "subject:Patient=$pid&_count=1") {
    my $r = http_get("$u/fhir/datica/Observation?$q");
    my ($a) = for_request($r->{headers}{'x-request-id'});
    is($a->{patient}, $pid, "Observation?$q: the audit names the patient");
}

# a batch entry whose URL is written with JSON escapes (as .NET's serializer
# writes "&" and "=" unless told not to): the audit names the patient the
# partner reads, not the escaped text
{
    my $batch = '{"resourceType":"Bundle","type":"batch","entry":['
        . qq({"request":{"method":"GET","url":"Observation?patient\\u003d$pid\\u0026_count=2"}},)
        . qq({"request":{"method":"GET","url":"Patient\\/$pid"}},)
        . qq({"request":{"method":"GET","url":"Observ%61tion?patient=$pid&_count=1"}}]});
    my $r = http_post("$u/fhir/datica/", $batch, 'Content-Type' => 'application/fhir+json');
    is($r->{status}, 200, 'batch with escaped URLs: 200');
    my $b = eval { JSON::PP->new->decode($r->{content}) } || {};
    is($b->{entry}[0]{response}{status}, '200 OK', 'escaped search: the partner answered it');
    ok(@{ $b->{entry}[0]{resource}{entry} // [] } > 0, 'escaped search: with entries');
    my @rec = for_request($r->{headers}{'x-request-id'});
    is($rec[0]{patient}, $pid, 'escaped search: the audit names the patient searched');
    like($rec[0]{query} // '', qr/^patient=\Q$pid\E&_count=2$/, 'escaped search: the query as the partner read it');
    is($rec[1]{patient}, $pid, 'escaped read: the audit names the patient read');
    is($rec[2]{event}, 'vitals.search', 'a percent-encoded type: the event of the type the partner reads');
    is($rec[2]{resource_type}, 'Observation', '... and that type');
}

# denied, upstream error, aborted stream
{
    my $r = http_get("$u/fhir/nosuch/Patient/$pid");
    is($r->{status}, 401, 'unknown partner, no token: 401');
    my ($a) = for_request($r->{headers}{'x-request-id'});
    is($a->{outcome}, 'denied', 'unknown partner: denied');
    is($a->{event}, 'patient.read', '... still says what was asked');

    $r = http_get("$u/fhir/redox/Patient/_fault-500");
    ($a) = for_request($r->{headers}{'x-request-id'});
    is($a->{outcome}, 'upstream_error', 'partner 500: upstream_error');

    $r = http_get("$u/fhir/redox/Patient/_fault-html");
    ($a) = for_request($r->{headers}{'x-request-id'});
    is($a->{outcome}, 'upstream_error', 'partner HTML: upstream_error');

    my $before = scalar records();
    $r = http_get("$u/fhir/redox/Patient/_fault-truncated");
    my @new = (records())[$before .. scalar(records()) - 1];
    my ($ab) = grep { ($_->{resource_id} // '') eq '_fault-truncated' } @new;
    is($ab->{outcome}, 'aborted', 'a stream cut off mid-way: aborted');
}

# the file is the compliance team's, not everyone's; PHI stays out of the error log
is((stat $log)[2] & 0777, 0600, 'audit log is mode 0600');
unlike($g->error_log, qr/\Q$pid\E/, 'no patient id in the error log');

# the verifier: whole chains pass
my $out = `$verify --key $key $log 2>&1`;
is($? >> 8, 0, 'verifier: the log is whole') or diag $out;
like($out, qr/ok: \d+ records in 2 chains/, 'verifier: one chain per worker');

# ... and each kind of tampering fails
my @lines = do { open my $fh, '<', $log; <$fh> };
sub tampered {
    my ($what, @l) = @_;
    my $f = $g->prefix . "/logs/tampered-$what.log";
    open my $fh, '>', $f or die; print $fh @l; close $fh;
    my $o = `$verify --key $key $f 2>&1`;
    return ($? >> 8, $o);
}
my ($w) = grep { $lines[$_] =~ /"event":"patient.read"/ } 0 .. $#lines;
my @e = @lines; $e[$w] =~ s/"patient":"[^"]*"/"patient":"someone-else"/;
my ($rc, $o) = tampered('edit', @e);
ok($rc != 0 && $o =~ /edited/, 'verifier: an edited record') or diag $o;
@e = @lines; splice(@e, $w, 1);
($rc, $o) = tampered('delete', @e);
ok($rc != 0 && $o =~ /deleted|missing|replaced/, 'verifier: a deleted record') or diag $o;
my ($w2) = grep { $_ > $w && $lines[$_] =~ /"chain":"\Q@{[ JSON::PP->new->decode($lines[$w])->{chain} ]}\E"/ } 0 .. $#lines;
@e = @lines; @e[$w, $w2] = @e[$w2, $w];
($rc, $o) = tampered('reorder', @e);
ok($rc != 0 && $o =~ /reordered|missing|moved/, 'verifier: reordered records') or diag $o;
@e = @lines; $e[-1] = substr($e[-1], 0, 40);
($rc, $o) = tampered('truncate', @e);
ok($rc != 0 && $o =~ /truncated/, 'verifier: a truncated log') or diag $o;

# rotation: move the file, USR1, the chains go on in the new file
{
    rename $log, "$log.1" or die $!;
    open my $pf, '<', $g->prefix . '/logs/nginx.pid' or die; my $mpid = <$pf>; chomp $mpid;
    kill 'USR1', $mpid;
    select(undef, undef, undef, 0.5);
    # nginx would create the new file 0644, readable by anyone who opens it
    # before the first record: it is 0600 before any request
    ok(-e $log, 'rotation: the new file, before any request');
    is((stat $log)[2] & 0777, 0600, 'rotation: 0600 before its first record');
    http_get("$u/fhir/datica/Patient/$pid") for 1 .. 4;
    ok(-s $log, 'rotation: a new audit log');
    is((stat $log)[2] & 0777, 0600, 'rotation: the new file is 0600 too');
    my $o2 = `$verify --key $key $log.1 $log 2>&1`;
    is($? >> 8, 0, 'rotation: the chains continue across the files') or diag $o2;
    my $o3 = `$verify --key $key $log 2>&1`;
    isnt($? >> 8, 0, 'rotation: the new file alone lacks the start of its chains');
}

# 2 workers, 1000 concurrent requests: 1000 whole records, none torn
{
    my $before = scalar records();
    my $ids = $g->prefix . '/logs/ids';
    my @kids;
    for my $k (1 .. 10) {
        my $pid = fork();
        if ($pid == 0) {
            my $h = HTTP::Tiny->new(keep_alive => 0,
                default_headers => { Authorization => 'Bearer ' . $g->token_for('datica') });
            open my $fh, '>', "$ids.$k" or die;
            for (1 .. 100) {
                my $r = $h->get("$u/fhir/datica/Patient/smart-1288992");
                print $fh "$r->{status} ", ($r->{headers}{'x-request-id'} // '-'), "\n";
            }
            close $fh;
            POSIX::_exit(0);   # not exit: the END blocks would stop the gateway
        }
        push @kids, $pid;
    }
    waitpid($_, 0) for @kids;
    select(undef, undef, undef, 0.5);
    my @answers = map { open my $fh, '<', "$ids.$_"; map { [ split ' ' ] } <$fh> } 1 .. 10;
    is(scalar(grep { $_->[0] == 200 } @answers), 1000, 'concurrency: 1000 requests answered 200');
    # (the gateway draws the ids' random bytes 4 KB at a time: 256 ids a
    # draw, so each worker drew several times here)
    my %ids = map { $_->[1] => 1 } grep { $_->[1] =~ /^[0-9a-f]{32}\z/ } @answers;
    is(scalar(keys %ids), 1000, 'concurrency: 1000 distinct request ids of 32 hex digits');
    my @all = records();
    my @new = @all[$before .. $#all];
    is(scalar(grep { $_->{broken} } @new), 0, 'concurrency: no torn record');
    my %audited;
    $audited{ $_->{request_id} }++ for grep { ($_->{event} // '') eq 'patient.read' } @new;
    is(scalar(grep { ($audited{ $_->[1] } // 0) == 1 } @answers), 1000,
       'concurrency: each of the 1000 requests has exactly one record');
    my $o4 = `$verify --key $key $log.1 $log 2>&1`;
    is($? >> 8, 0, 'concurrency: the chains verify') or diag $o4;
}
$g->stop;

# fail-closed: an audit sink that cannot be written refuses PHI with a 503
{
    my $fc = start_gateway(name => 'audit-failclosed', env => { AUDIT_LOG => '/dev/full' },
                           extra_http => "fhir_audit_fail_closed on;\n");
    my $r = http_get($fc->url . "/fhir/datica/Patient/$pid");
    is($r->{status}, 503, 'fail-closed: 503 when the audit log cannot be written');
    is(json_of($r)->{resourceType}, 'OperationOutcome', '... as an OperationOutcome');
    like(json_of($r)->{issue}[0]{diagnostics}, qr/audit trail cannot be written/, '... saying why');
    like($fc->error_log, qr/audit record not written to "\/dev\/full".*No space left/,
         'the error log says why');
    $fc->stop;

    my $fo = start_gateway(name => 'audit-failopen', env => { AUDIT_LOG => '/dev/full' });
    is(http_get($fo->url . "/fhir/datica/Patient/$pid")->{status}, 200,
       'fail-open (the default): still served, and logged');
    like($fo->error_log, qr/audit record not written/, '... with the failure in the error log');
}

done_testing();
