#ifndef GRIDLET_CMOSQUITTO_SHIM_H
#define GRIDLET_CMOSQUITTO_SHIM_H
#include <mosquitto.h>
#include <mqtt_protocol.h>
#endif
