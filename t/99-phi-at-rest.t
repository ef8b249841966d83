# After the suite: no file under any test gateway's nginx prefix but the
# audit trail holds a patient's name or id: no proxy temp files, no request
# bodies, error and access logs free of PHI (issue 7).  Runs last (prove
# takes the files in order); with nothing to scan it skips.
use strict;
use warnings;
use Test::More;
use lib 't/lib';
use FhirTest qw(top_dir);
use File::Find;

my $root = top_dir() . '/build/t';
my @prefixes = grep { -d "$_/logs" } glob("$root/*");
plan skip_all => 'no test gateway ran before this test' unless @prefixes;

# names and ids of the sample patients the tests read
my @phi = qw(smart-1288992 Adams Daniel smart-1081332 04327b09-4d3a-4c8b-9959-83bc1b358203
             loc-ward-4 AB12345);

my (@files, @temp);
find(sub {
    return unless -f $_;
    my $p = $File::Find::name;
    return if $p =~ m{/logs/(audit\.log|tampered-[^/]*\.log)} ;   # the audit trail and its copies
    return if $p =~ m{/secrets/|/conf/};                           # keys and configuration
    push @temp, $p if $p =~ m{^\Q$root\E/[^/]+/tmp/};
    push @files, $p;
}, @prefixes);

ok(@files > 20, scalar(@files) . ' files scanned under ' . scalar(@prefixes) . ' prefixes');
is(scalar @temp, 0, 'no temp file (proxy or request body) under any prefix') or diag "@temp";

my @hits;
for my $f (@files) {
    open my $fh, '<:raw', $f or next;
    local $/;
    my $text = <$fh> // '';
    for my $m (@phi) {
        push @hits, "$f: $m" if index($text, $m) >= 0;
    }
}
is(scalar @hits, 0, 'no patient name or id outside the audit trail') or diag join "\n", @hits[0 .. ($#hits < 9 ? $#hits : 9)];

done_testing();
