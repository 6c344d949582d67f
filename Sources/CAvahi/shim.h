/* CAvahi: the parts of libavahi-client that Runtime's Discovery uses (browse and resolve on a
   threaded poll). Wrapped by Sources/Runtime/AvahiBrowser.swift; nothing else imports it. */
#include <avahi-client/client.h>
#include <avahi-client/lookup.h>
#include <avahi-common/address.h>
#include <avahi-common/error.h>
#include <avahi-common/strlst.h>
#include <avahi-common/thread-watch.h>
#include <avahi-common/timeval.h>
#include <avahi-common/watch.h>
