package FhirTest;
# The integration-test harness: starts a real nginx with the ngx_fhir module
# and the four mock partners (scripts/gateway) in a private prefix under
# build/t/, on free loopback ports, and stops them at the end of the test.
# Perl core modules only.

use strict;
use warnings;
use Exporter 'import';
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use File::Spec;
use Cwd qw(abs_path);
use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP;

our @EXPORT_OK = qw(start_gateway http_get http_post json_of top_dir token_for free_port
                    get_token %TENANT);

# the demo tenants (conf/demo/nginx.conf.in) and their clients
our %TENANT = (
    redox    => '2f4a8c1e-5b7d-4e3a-9c61-0d8b7f3a1e01',
    datica   => '7c9e6679-7425-40de-944b-e07fc1f90ae7',
    infor    => '9b2d3f4a-1c5e-4a7b-8d9e-2f3a4b5c6d7e',
    dapasoft => '3e5f7a9b-2c4d-4e6f-8a1b-3c5d7e9f1a2b',
);
my %TOKEN;   # "port/partner" -> a bearer token of that partner's tenant

my $TOP = abs_path(dirname(__FILE__) . '/../..');

# the nginx and the module under test (make test-asan swaps in sanitized ones)
our $NGINX = $ENV{FHIR_NGINX} // '/usr/sbin/nginx';
our $MODULE = $ENV{MODULE} // "$TOP/build/ngx_http_fhir_module.so";
my @started;

sub top_dir { $TOP }

# one free port on loopback (for a server a test adds)
# Ports for tests: below Linux's ephemeral range (32768 and up), where the
# local end of any outgoing connection could take one between the check
# here and the bind() of the server it is for; and never the same port
# twice in one test file.
my %handed;

sub _port_free {
    my ($p) = @_;
    return 0 if $handed{$p};
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $p,
                                  Proto => 'tcp', ReuseAddr => 1, Listen => 1);
    return 0 if !$s;
    close $s;
    return 1;
}

sub free_port {
    for my $try (1 .. 500) {
        my $p = 20000 + int(rand(12000));
        if (_port_free($p)) {
            $handed{$p} = 1;
            return $p;
        }
    }
    die "no free port";
}

sub _free_port_block {
    # four consecutive free ports for the mocks, plus one for the gateway
    for my $try (1 .. 200) {
        my $base = 20000 + int(rand(12000));
        next if grep { !_port_free($_) } $base .. $base + 5;
        $handed{$_} = 1 for $base .. $base + 5;
        return $base;
    }
    die "no free ports";
}

# start_gateway(name => 'routing', extra_http => "...", env => {...});
# in extra_http, @P_DATICA@ (and the other partners) is the mock's port and
# @PREFIX@ the gateway's prefix
sub start_gateway {
    my (%o) = @_;
    my $name = $o{name} or die "name";
    my $prefix = "$TOP/build/t/$name";
    remove_tree($prefix);
    make_path("$prefix/conf");
    my $base = _free_port_block();
    my %env = (
        FHIR_PREFIX    => $prefix,
        PORT           => $base + 5,
        MOCK_PORT_BASE => $base,
        WORKERS        => $o{workers} // 1,
        LOG_LEVEL      => $o{log_level} // 'notice',
        READ_TIMEOUT   => $o{read_timeout} // '30s',
        %{ $o{env} // {} },
    );
    if (defined $o{extra_http}) {
        my $f = "$prefix/conf/extra-http.conf";
        my %p = (REDOX => 1, DATICA => 2, INFOR => 3, DAPASOFT => 4);
        (my $text = $o{extra_http}) =~ s/\@P_(REDOX|DATICA|INFOR|DAPASOFT)\@/$base + $p{$1}/ge;
        $text =~ s/\@PREFIX\@/$prefix/g;
        open my $fh, '>', $f or die $!;
        print $fh $text;
        close $fh;
        $env{EXTRA_HTTP} = $f;
    }
    local @ENV{ keys %env } = values %env;
    my $out = `$TOP/scripts/gateway start 2>&1`;
    die "gateway did not start:\n$out" if $?;
    my $g = bless { prefix => $prefix, env => \%env, port => $env{PORT},
                    base => $base, url => "http://127.0.0.1:$env{PORT}" }, __PACKAGE__;
    push @started, $g;

    # a token per demo tenant, which http_get/http_post add for that partner
    for my $p (keys %TENANT) {
        my $t = get_token($g, $p);
        $TOKEN{"$env{PORT}/$p"} = $t if $t;
    }
    return $g;
}

# POST /fhir/token with the demo client of a partner's tenant
sub get_token {
    my ($g, $partner, %o) = @_;
    my $secret = $o{secret} // "demo-secret-$partner";
    my $client = $o{client} // "patients-app-$partner";
    my $r = HTTP::Tiny->new(timeout => 10)->post_form($g->url . '/fhir/token',
        { grant_type => 'client_credentials', scope => $o{scope} // $TENANT{$partner},
          client_id => $client, client_secret => $secret });
    return undef unless $r->{success};
    my $j = eval { JSON::PP->new->decode($r->{content}) };
    return $j ? $j->{access_token} : undef;
}

sub token_for {
    my ($g, $partner) = @_;
    return $TOKEN{"$g->{port}/$partner"};
}

sub _auth_headers {
    my ($url, $h) = @_;
    return $h if exists $h->{Authorization} || exists $h->{authorization};
    if ($url =~ m{^http://127\.0\.0\.1:(\d+)/fhir/([^/?]+)}) {
        my $t = $TOKEN{"$1/$2"};
        return { %$h, Authorization => "Bearer $t" } if $t;
    }
    return $h;
}

sub url { $_[0]{url} }
sub prefix { $_[0]{prefix} }
sub mock_port { my ($g, $name) = @_;
    my %i = (redox => 1, datica => 2, infor => 3, dapasoft => 4);
    return $g->{base} + $i{$name};
}

sub stop {
    my ($g) = @_;
    return if $g->{stopped}++;
    local @ENV{ keys %{ $g->{env} } } = values %{ $g->{env} };
    system("$TOP/scripts/gateway stop >/dev/null 2>&1");
}

sub error_log {
    my ($g) = @_;
    open my $fh, '<', "$g->{prefix}/logs/error.log" or return '';
    local $/;
    return <$fh>;
}

sub kill_mock {
    my ($g, $name) = @_;
    my $f = "$g->{prefix}/run/mock-$name.pid";
    open my $fh, '<', $f or die "$f: $!";
    my $pid = <$fh>;
    chomp $pid;
    kill 'TERM', $pid;
    select(undef, undef, undef, 0.3);
}

END { $_->stop for @started }

my $http = HTTP::Tiny->new(timeout => 20, keep_alive => 0);

sub http_get {
    my ($url, %h) = @_;
    return $http->get($url, { headers => _auth_headers($url, \%h) });
}

sub http_post {
    my ($url, $body, %h) = @_;
    return $http->post($url, { headers => _auth_headers($url, \%h), content => $body });
}

sub json_of {
    my ($res) = @_;
    return eval { JSON::PP->new->decode($res->{content}) };
}

1;
