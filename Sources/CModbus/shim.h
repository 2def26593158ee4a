#ifndef GRIDLET_CMODBUS_SHIM_H
#define GRIDLET_CMODBUS_SHIM_H
#include <modbus/modbus.h>
#include <errno.h>

/* libmodbus defines its error codes relative to a macro that Swift cannot import. */
static const int gridlet_MODBUS_ENOBASE = MODBUS_ENOBASE;
static const int gridlet_EMBXILFUN = EMBXILFUN;
static const int gridlet_EMBXILADD = EMBXILADD;
static const int gridlet_EMBXILVAL = EMBXILVAL;
static const int gridlet_EMBXSFAIL = EMBXSFAIL;
static const int gridlet_EMBXACK = EMBXACK;
static const int gridlet_EMBXSBUSY = EMBXSBUSY;
static const int gridlet_EMBXNACK = EMBXNACK;
static const int gridlet_EMBXMEMPAR = EMBXMEMPAR;
static const int gridlet_EMBXGPATH = EMBXGPATH;
static const int gridlet_EMBXGTAR = EMBXGTAR;
static const int gridlet_EMBBADCRC = EMBBADCRC;
static const int gridlet_EMBBADDATA = EMBBADDATA;
static const int gridlet_EMBBADEXC = EMBBADEXC;
static const int gridlet_EMBMDATA = EMBMDATA;
static const int gridlet_EMBBADSLAVE = EMBBADSLAVE;
static const int gridlet_MODBUS_TCP_MAX_ADU_LENGTH = MODBUS_TCP_MAX_ADU_LENGTH;
static const int gridlet_MODBUS_RTU_MAX_ADU_LENGTH = MODBUS_RTU_MAX_ADU_LENGTH;
static const int gridlet_MODBUS_RTU_RS485 = MODBUS_RTU_RS485;
static const int gridlet_MODBUS_RTU_RTS_UP = MODBUS_RTU_RTS_UP;
static const int gridlet_MODBUS_RTU_RTS_DOWN = MODBUS_RTU_RTS_DOWN;

static inline int gridlet_errno(void) { return errno; }
#endif
