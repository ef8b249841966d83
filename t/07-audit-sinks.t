# The audit trail as FHIR R4 AuditEvents (valid against the R4 schema,
# verifiable), and to syslog in RFC 5424 (issue 6).
use strict;
use warnings;
use Test::More;
use lib 't/lib';
use FhirTest qw(start_gateway http_get top_dir);
use IO::Socket::INET;
use JSON::PP;
use MIME::Base64 ();

my $top = top_dir();
my $pid = 'smart-1288992';

# AuditEvent lines
{
    my $g = start_gateway(name => 'audit-auditevent', extra_http => "fhir_audit_format auditevent;\n");
    my $u = $g->url;
    http_get("$u/fhir/datica/Patient/$pid");
    http_get("$u/fhir/redox/Observation?patient=$pid&category=vital-signs");
    http_get("$u/fhir/nosuch/Patient/$pid");
    http_get("$u/fhir/datica/Observation/smart-Observation-854-bmi");
    http_get("$u/fhir/datica/Patient/no-such-patient");
    # raw bytes that are not UTF-8 in the query, and a 70,000-byte search
    # form: their AuditEvents are UTF-8 JSON too, and valid R4 (below)
    {
        my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$g->{port}") or die $!;
        print $s "GET /fhir/datica/Patient?family=\xff\xfe HTTP/1.1\r\nHost: x\r\n"
            . "Connection: close\r\n\r\n";
        my $ignored = join '', <$s>;
        FhirTest::http_post("$u/fhir/datica/Patient/_search", 'family=' . ('a' x 70000),
                            'Content-Type' => 'application/x-www-form-urlencoded');
    }
    select(undef, undef, undef, 0.3);
    my $log = $g->prefix . '/logs/audit.log';
    open my $fh, '<', $log or die;
    my @lines = <$fh>;
    require Encode;
    is(scalar(grep { !eval { Encode::decode('UTF-8', my $c = $_, Encode::FB_CROAK()); 1 } } @lines), 0,
       'every AuditEvent line is UTF-8 (raw request bytes written %XX)');
    my @ev = map { JSON::PP->new->utf8->decode($_) } @lines;
    ok(@ev >= 4, 'AuditEvent lines written');
    ok((grep { grep { ($_->{query} // '') ne ''
                      && MIME::Base64::decode_base64($_->{query}) eq 'family=%FF%FE' } @{ $_->{entity} // [] } } @ev),
       'the raw bytes of a query, %XX in its AuditEvent');
    ok((grep { grep { ($_->{query} // '') ne ''
                      && MIME::Base64::decode_base64($_->{query}) =~ /^family=a{4089}\.\.\.\(70007 bytes\)\z/ }
               @{ $_->{entity} // [] } } @ev),
       'a huge search form: its AuditEvent carries the cut query and its length');
    is(scalar(grep { $_->{resourceType} ne 'AuditEvent' } @ev), 0, 'every line is an AuditEvent');
    my ($read) = grep { ($_->{subtype}[0]{code} // '') eq 'read' && $_->{entity}
                        && $_->{outcome} eq '0' } @ev;
    ok($read, 'a read: subtype read, outcome 0');
    is($read->{action}, 'R', 'read: action R');
    is($read->{entity}[0]{what}{reference}, "Patient/$pid", 'read: the patient is an entity');
    my ($search) = grep { ($_->{subtype}[0]{code} // '') eq 'search-type' } @ev;
    is($search->{action}, 'E', 'search: action E');
    my ($q) = grep { $_->{query} } @{ $search->{entity} };
    like(MIME::Base64::decode_base64($q->{query}), qr/patient=\Q$pid\E/, 'search: the query, base64');
    ok(grep({ $_->{outcome} eq '4' } @ev), 'a denial: outcome 4');
    my ($err) = grep { $_->{outcome} eq '8' } @ev;
    is($err && $err->{outcomeDesc}, 'upstream_error', 'an upstream error: outcome 8, and what it was');
    my ($obs) = grep { grep { ($_->{what}{reference} // '') eq 'Observation/smart-Observation-854-bmi' }
                       @{ $_->{entity} // [] } } @ev;
    ok($obs, 'a resource read: the resource is an entity');
    is($obs && $obs->{entity}[0]{what}{reference}, "Patient/$pid",
       'a resource read: its patient (from the resource) comes first');

    # the record's own text travels in the seal's extension, as the JSON
    # lines format would have it
    my %seal = map { $_->{url} => ($_->{valueString} // $_->{valueInteger}) }
               @{ $read->{extension}[0]{extension} };
    my $rec = JSON::PP->new->decode($seal{record});
    is($rec->{event}, 'patient.read', 'the sealed record: its event');
    is($rec->{patient}, $pid, 'the sealed record: its patient');
    ok(exists $rec->{query} && exists $rec->{bytes}, 'the sealed record: every member');
    is($ev[0]{extension}[0]{extension}[1]{valueString} =~ /"event":"audit.start"/ ? 1 : 0, 1,
       "the worker's first record: audit.start");
    ok(!$ev[0]{entity}, "the worker's first record: no entity");

    my $out = `$top/build/fhir-audit-verify --key @{[ $g->prefix ]}/secrets/audit.key $log 2>&1`;
    is($? >> 8, 0, 'AuditEvent chains verify') or diag $out;

    # valid R4 (the schema validator that make test installs)
    my $modules = "$top/build/schema/node_modules";
    SKIP: {
        skip 'schema validator not installed', 1 unless -d $modules;
        my $res = `node $top/t/schema/validate-lines.js $modules $log 2>&1`;
        like($res, qr/lines: \d+ passed, 0 failed/, 'every AuditEvent is valid R4') or diag $res;
    }
    $g->stop;
}

# syslog, RFC 5424, over UDP to a collector on loopback
{
    my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'udp')
        or die $!;
    my $port = $srv->sockport;
    my $g = start_gateway(name => 'audit-syslog',
                          env => { AUDIT_LOG => "syslog:server=127.0.0.1:$port,facility=local3,tag=fhirtest" });
    my $r = http_get($g->url . "/fhir/datica/Patient/$pid");
    is($r->{status}, 200, 'served with a syslog audit sink');
    my @msgs;
    $srv->blocking(0);
    for (1 .. 20) {
        my $m;
        while ($srv->recv($m, 65536)) { push @msgs, $m }
        last if grep { /patient\.read/ } @msgs;
        select(undef, undef, undef, 0.1);
    }
    my ($m) = grep { /patient\.read/ } @msgs;
    ok($m, 'a syslog message for the read');
    like($m // '', qr/^<158>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \S+ fhirtest \d+ fhir - \{/,
         'RFC 5424 header: local3.info, timestamp, host, tag, procid, msgid');
    my ($json) = ($m // '') =~ / fhir - (\{.*\})$/s;
    my $j = eval { JSON::PP->new->decode($json) };
    is($j->{event}, 'patient.read', 'the record is the message');
    ok($j->{hmac}, '... sealed');

    # a search form of 70,000 bytes: its record still fits a datagram (its
    # query cut at 4,096 bytes), so the read is not left without a record
    my $big = FhirTest::http_post($g->url . '/fhir/datica/Patient/_search',
                                  'family=' . ('a' x 70000),
                                  'Content-Type' => 'application/x-www-form-urlencoded');
    my $rid = $big->{headers}{'x-request-id'} // 'none';
    my ($bm);
    for (1 .. 20) {
        my $m;
        while ($srv->recv($m, 65536)) { $bm = $m if $m =~ /"request_id":"\Q$rid\E"/ }
        last if $bm;
        select(undef, undef, undef, 0.1);
    }
    ok($bm && $bm =~ /"query":"family=a{4089}\.\.\.\(70007 bytes\)"/,
       'a huge search form: its record reaches syslog, the query cut and its length said');
    $g->stop;
}

# a sink that is not a regular file: a FIFO read by a collector (as a
# container's /dev/stdout may be a pipe).  Records arrive whole and verify,
# and the FIFO keeps its mode and owner: the module makes its own audit
# files 0600 and the workers' own, never a pipe or a device (/dev/null or a
# terminal made 0600 would break the machine for every other user)
{
    require POSIX;
    require File::Path;
    my $dir = "$top/build/t/audit-fifo-sink";
    File::Path::remove_tree($dir);
    File::Path::make_path($dir);
    my ($fifo, $copy) = ("$dir/audit.fifo", "$dir/records.log");
    POSIX::mkfifo($fifo, 0644) or die "mkfifo: $!";
    chmod 0644, $fifo;
    my @before = stat $fifo;
    # the collector: whatever comes through, to a file, reopening the FIFO
    # each time its writers are gone (nginx -t opens and closes it too)
    my $reader = fork() // die;
    if ($reader == 0) {
        # never outlives the test, nor holds prove's output open: a reader
        # blocked in open() on a FIFO that no gateway writes would hang the
        # suite
        close STDOUT;
        close STDERR;
        alarm 120;
        open my $out, '>>', $copy or POSIX::_exit(1);
        for (;;) {
            open my $in, '<', $fifo or POSIX::_exit(1);
            my $buf;
            while (sysread($in, $buf, 65536)) { syswrite($out, $buf) }
            close $in;
        }
    }
    my $g = eval {
        start_gateway(name => 'audit-fifo', env => { AUDIT_LOG => $fifo },
                      extra_http => "fhir_audit_fail_closed on;\n");
    };
    if (!$g) {
        kill 'KILL', $reader;
        waitpid($reader, 0);
        die $@;
    }
    my $r = http_get($g->url . "/fhir/datica/Patient/$pid");
    is($r->{status}, 200, 'served with a FIFO as the audit sink');
    http_get($g->url . "/fhir/redox/Observation?patient=$pid&category=vital-signs");
    my @lines;
    for (1 .. 20) {
        open my $fh, '<', $copy or last;
        @lines = <$fh>;
        last if grep { /"event":"vitals\.search"/ } @lines;
        select(undef, undef, undef, 0.1);
    }
    my @ev = map { (eval { JSON::PP->new->decode($_) } // {})->{event} // 'not JSON' } @lines;
    ok((grep { $_ eq 'patient.read' } @ev) && !(grep { $_ eq 'not JSON' } @ev),
       "records through the FIFO, whole (@ev)");
    my @after = stat $fifo;
    is(sprintf('%04o', $after[2] & 07777), '0644', 'the FIFO keeps its mode');
    is($after[4], $before[4], 'the FIFO keeps its owner');
    like($g->error_log, qr/audit log "\Q$fifo\E" is not a regular file: its mode and owner are left as they are/,
         'the error log says so');

    # the collector goes away: the next record cannot be written (a broken
    # pipe), and with fhir_audit_fail_closed the reads after it are refused
    kill 'KILL', $reader;
    waitpid($reader, 0);
    http_get($g->url . "/fhir/datica/Patient/$pid");
    my $refused = http_get($g->url . "/fhir/datica/Patient/$pid");
    is($refused->{status}, 503, 'the FIFO without its reader: PHI refused (fail-closed)');
    like($g->error_log, qr/audit record not written to "\Q$fifo\E".*Broken pipe/,
         'the FIFO without its reader: the error log says why');
    $g->stop;
    my $out = `$top/build/fhir-audit-verify --key @{[ $g->prefix ]}/secrets/audit.key $copy 2>&1`;
    is($?, 0, 'the records through the FIFO verify') or diag $out;
}

# mode=0640 (a log shipper's group may read the file): the file has that
# mode from the start, and so does the new file nginx reopens at USR1,
# before any record
{
    my $log = "$top/build/t/audit-0640/logs/audit.log";
    my $g = start_gateway(name => 'audit-0640', env => { AUDIT_LOG => "$log mode=0640" });
    is((stat $log)[2] & 0777, 0640, 'mode=0640: the audit file is 0640');
    is(http_get($g->url . "/fhir/datica/Patient/$pid")->{status}, 200, 'mode=0640: served');
    rename $log, "$log.1" or die $!;
    open my $pf, '<', $g->prefix . '/logs/nginx.pid' or die;
    chomp(my $mpid = <$pf>);
    kill 'USR1', $mpid;
    select(undef, undef, undef, 0.5);
    is((stat $log)[2] & 0777, 0640, 'mode=0640: the reopened file is 0640 before its first record');
    http_get($g->url . "/fhir/datica/Patient/$pid");
    select(undef, undef, undef, 0.2);
    my $out = `$top/build/fhir-audit-verify --key @{[ $g->prefix ]}/secrets/audit.key $log.1 $log 2>&1`;
    is($?, 0, 'mode=0640: the chains continue across the files') or diag $out;
    $g->stop;
}

done_testing();
