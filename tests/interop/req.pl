#!/usr/bin/perl
# A REQ client in Perl (ZMQ::FFI) for the cross-language tests: sends COUNT
# requests (some with non-ASCII bytes) and checks each SHA-1 digest it gets back.
# Exits 0 when every digest matched, 1 otherwise.
# Usage: perl req.pl ENDPOINT COUNT
use strict;
use warnings;
use Digest::SHA qw(sha1_hex);
use ZMQ::FFI;
use ZMQ::FFI::Constants qw(ZMQ_REQ ZMQ_LINGER ZMQ_RCVTIMEO);

$| = 1;
my ($endpoint, $count) = @ARGV;
my $ctx  = ZMQ::FFI->new();
my $sock = $ctx->socket(ZMQ_REQ);
$sock->set(ZMQ_LINGER,   'int', 0);
$sock->set(ZMQ_RCVTIMEO, 'int', 10_000);    # a ceiling: no reply is a failure, not a hang
$sock->connect($endpoint);

my $mismatched = 0;
for my $n (1 .. $count) {
    my $data = "perl client pid=$$ request $n caf\xc3\xa9 \x00\xff";
    $sock->send($data);
    my $digest = $sock->recv();
    if ($digest eq sha1_hex($data)) {
        print "perl (pid=$$): received sha1 of data: $digest\n";
    } else {
        print "perl (pid=$$): sha1 mismatch: expected ", sha1_hex($data), ", got '$digest'\n";
        $mismatched++;
    }
}
print "perl (pid=$$): done, ", $count - $mismatched, " replies verified, $mismatched mismatched\n";
exit($mismatched ? 1 : 0);
