# The Patients app's reads through the gateway, for each demo partner, come
# back as R4: searches, paging through the gateway, direct reads, Patient
# search by POST, batch; and bad partner responses give a 502
# OperationOutcome or an aborted response (issue 4).
use strict;
use warnings;
use Test::More;
use lib 't/lib';
use FhirTest qw(start_gateway http_get http_post json_of);
use HTTP::Tiny;

my $g = start_gateway(name => 'conversion');
my $u = $g->url;
my $pid = 'smart-1288992';

my %version = (redox => 'stu3', datica => 'dstu2', infor => 'dstu2', dapasoft => 'stu3');

sub entries { map { $_->{resource} } @{ $_[0]{entry} || [] } }

for my $p (sort keys %version) {
    my $v = $version{$p};

    # vital signs, newest first, the R4 way (_sort=-date)
    my $r = http_get("$u/fhir/$p/Observation?patient=$pid&category=vital-signs&_sort=-date&_count=5");
    is($r->{status}, 200, "$p: vital signs search");
    my $bundle = json_of($r);
    is($bundle->{resourceType}, 'Bundle', "$p: a Bundle");
    ok($bundle->{total} > 5, "$p: total kept ($bundle->{total})");
    my @obs = entries($bundle);
    is(scalar @obs, 5, "$p: _count honoured");
    my @dates = map { $_->{effectiveDateTime} // '' } @obs;
    ok(@dates == 5 && !grep({ $_ eq '' } @dates), "$p: every vital sign has a date");
    is_deeply(\@dates, [ reverse sort @dates ], "$p: newest first (_sort translated)");
    is($obs[0]{category}[0]{coding}[0]{system},
       'http://terminology.hl7.org/CodeSystem/observation-category',
       "$p: category is an array with the R4 code system");
    my ($next) = grep { $_->{relation} eq 'next' } @{ $bundle->{link} };
    like($next->{url}, qr{^\Q$u\E/fhir/$p/Observation\?}, "$p: next link points at the gateway");
    like($bundle->{entry}[0]{fullUrl}, qr{^\Q$u\E/fhir/$p/Observation/}, "$p: fullUrl points at the gateway");

    # follow the next link through the gateway
    my $r2 = http_get($next->{url});
    is($r2->{status}, 200, "$p: next page through the gateway");
    my @obs2 = entries(json_of($r2));
    isnt($obs2[0]{id}, $obs[0]{id}, "$p: next page is another page");

    # medications: R4 MedicationRequest, whatever the partner calls it
    $r = http_get("$u/fhir/$p/MedicationRequest?patient=$pid&_count=10");
    is($r->{status}, 200, "$p: medication search");
    my @meds = entries(json_of($r));
    ok(@meds > 0, "$p: medications found");
    is($meds[0]{resourceType}, 'MedicationRequest', "$p: MedicationRequest");
    ok($meds[0]{intent}, "$p: intent set");
    ok(exists $meds[0]{subject}, "$p: subject");

    # conditions, encounters, allergies, coverage
    for my $t (qw(Condition Encounter AllergyIntolerance Coverage)) {
        $r = http_get("$u/fhir/$p/$t?patient=$pid");
        is($r->{status}, 200, "$p: $t search");
        my @res = entries(json_of($r));
        ok(@res > 0, "$p: $t found") or next;
        is($res[0]{resourceType}, $t, "$p: $t type");
        if ($t eq 'Condition') {
            ok($res[0]{subject}, "$p: Condition.subject");
            is(ref $res[0]{clinicalStatus}, 'HASH', "$p: clinicalStatus is a CodeableConcept")
                if $res[0]{clinicalStatus};
        }
        if ($t eq 'Encounter') {
            ok($res[0]{subject}, "$p: Encounter.subject");
            is(ref $res[0]{class}, 'HASH', "$p: Encounter.class is a Coding");
        }
        if ($t eq 'AllergyIntolerance') {
            ok($res[0]{code}, "$p: AllergyIntolerance.code");
        }
        if ($t eq 'Coverage') {
            ok(grep({ $_->{type}{coding}[0]{code} eq 'plan' } @{ $res[0]{class} || [] }),
               "$p: Coverage plan became a class entry");
            is(ref $res[0]{payor}, 'ARRAY', "$p: Coverage.payor is an array");
        }
    }

    # Location by direct read
    $r = http_get("$u/fhir/$p/Location/loc-ward-4");
    is($r->{status}, 200, "$p: Location read");
    my $loc = json_of($r);
    is(ref $loc->{type}, 'ARRAY', "$p: Location.type is an array");
    like($r->{content}, qr/"longitude":-71\.1060/, "$p: decimals are kept byte for byte");

    # Patient search by POST, "contains" on family
    $r = http_post("$u/fhir/$p/Patient/_search", 'family=dam&_count=5',
                   'Content-Type' => 'application/x-www-form-urlencoded');
    is($r->{status}, 200, "$p: POST Patient/_search");
    my $pb = json_of($r);
    ok($pb->{total} >= 1, "$p: Patient search has a total");
    ok(grep({ $_->{id} eq $pid } entries($pb)), "$p: finds the patient");

    # a partner error is an OperationOutcome with the partner's status
    $r = http_get("$u/fhir/$p/Patient/does-not-exist");
    is($r->{status}, 404, "$p: a missing resource is the partner's 404");
    is(json_of($r)->{resourceType}, 'OperationOutcome', "$p: ... with an OperationOutcome");
}

# batch on an STU3 partner: one response entry per request, in order
{
    my $batch = '{"resourceType":"Bundle","type":"batch","entry":['
        . '{"request":{"method":"GET","url":"Patient/smart-1288992"}},'
        . '{"request":{"method":"GET","url":"Condition?patient=smart-1288992"}}]}';
    my $r = http_post("$u/fhir/redox/", $batch, 'Content-Type' => 'application/fhir+json');
    is($r->{status}, 200, 'batch answered');
    my $resp = json_of($r);
    is($resp->{type}, 'batch-response', 'batch-response');
    is(scalar @{ $resp->{entry} }, 2, 'one entry per request');
    is($resp->{entry}[0]{resource}{resourceType}, 'Patient', 'first entry: the Patient');
    is($resp->{entry}[1]{resource}{resourceType}, 'Bundle', 'second entry: the search');
}

# batch on a DSTU2 partner: each entry's request is translated (type name,
# sort syntax, Content-Type), and the batch-response comes back as R4
{
    my $batch = '{"resourceType":"Bundle","type":"batch","entry":['
        . '{"request":{"method":"GET","url":"MedicationRequest?patient=smart-1288992"}},'
        . '{"request":{"method":"GET","url":"Observation?patient=smart-1288992&category=vital-signs&_sort=-date&_count=3"}},'
        . '{"request":{"method":"GET","url":"Patient/smart-1288992"}}]}';
    my $r = http_post("$u/fhir/datica/", $batch, 'Content-Type' => 'application/fhir+json');
    is($r->{status}, 200, 'DSTU2 batch answered');
    my $resp = json_of($r);
    is($resp->{type}, 'batch-response', 'DSTU2 batch-response');
    is(scalar @{ $resp->{entry} }, 3, 'one entry per request, in order');
    like($resp->{entry}[0]{response}{status}, qr/^200/, 'MedicationRequest search translated');
    my @meds = entries($resp->{entry}[0]{resource});
    ok(@meds > 0, 'medications found through the batch');
    is($meds[0]{resourceType}, 'MedicationRequest', '... as R4 MedicationRequest');
    like($resp->{entry}[1]{response}{status}, qr/^200/, 'sorted search translated');
    my @d = map { $_->{effectiveDateTime} } entries($resp->{entry}[1]{resource});
    is_deeply(\@d, [ reverse sort @d ], 'batch search newest first');
    is($resp->{entry}[2]{resource}{name}[0]{family}, 'Adams', 'read through the batch');

    # writes are not reads
    my $w = '{"resourceType":"Bundle","type":"batch","entry":['
        . '{"request":{"method":"DELETE","url":"Patient/smart-1288992"}}]}';
    $r = http_post("$u/fhir/datica/", $w, 'Content-Type' => 'application/fhir+json');
    is($r->{status}, 400, 'a batch with a write is refused');
    like(json_of($r)->{issue}[0]{diagnostics}, qr/reads only/, '... saying why');

    $r = http_post("$u/fhir/datica/", '{"resourceType":"Bundle","type":"transaction"}',
                   'Content-Type' => 'application/fhir+json');
    is($r->{status}, 400, 'a transaction is refused');
    $r = http_post("$u/fhir/datica/", '{"resourceType":', 'Content-Type' => 'application/fhir+json');
    is($r->{status}, 400, 'a malformed batch is a 400');
    is(json_of($r)->{resourceType}, 'OperationOutcome', '... OperationOutcome');

    $r = http_post("$u/fhir/datica/Patient", '{"resourceType":"Patient"}',
                   'Content-Type' => 'application/fhir+json');
    is($r->{status}, 405, 'a create is refused (405)');
}

# bad partner responses
for my $case (['_fault-html', 'HTML'], ['_fault-broken', 'broken JSON'],
              ['_fault-gzip', 'gzip body']) {
    my ($id, $what) = @$case;
    my $r = http_get("$u/fhir/redox/Patient/$id");
    is($r->{status}, 502, "$what: 502");
    is(json_of($r)->{resourceType}, 'OperationOutcome', "$what: OperationOutcome");
}
like($g->error_log, qr/partner "redox" answered 200 with Content-Type "text\/html"/,
     'the HTML answer is logged');
like($g->error_log, qr/cannot be converted: truncated JSON/, 'the broken JSON is logged');

{
    my $r = http_get("$u/fhir/redox/Patient/_fault-500");
    is($r->{status}, 500, "a partner's 500 keeps its status");
    is(json_of($r)->{resourceType}, 'OperationOutcome', '... converted OperationOutcome');
}

# bytes already went out, then the partner broke off: the response must not
# look complete (HTTP::Tiny reports 599 for a truncated chunked body)
{
    my $r = http_get("$u/fhir/redox/Patient/_fault-truncated");
    is($r->{status}, 599, 'truncated Bundle: the client sees an incomplete response');
}

done_testing();
