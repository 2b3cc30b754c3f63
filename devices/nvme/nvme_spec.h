/* NVM Express 1.4 as the controller emulation uses it: register offsets and bits, command
 * opcodes, status codes, log pages and feature identifiers (numbers from the specification). */
#ifndef MINIVMM_DEVICES_NVME_NVME_SPEC_H
#define MINIVMM_DEVICES_NVME_NVME_SPEC_H

/* Controller registers (3.1). */
#define NVME_REG_CAP 0x00
#define NVME_REG_VS 0x08
#define NVME_REG_INTMS 0x0C
#define NVME_REG_INTMC 0x10
#define NVME_REG_CC 0x14
#define NVME_REG_CSTS 0x1C
#define NVME_REG_NSSR 0x20
#define NVME_REG_AQA 0x24
#define NVME_REG_ASQ 0x28
#define NVME_REG_ACQ 0x30
#define NVME_REG_DOORBELL 0x1000 /* SQ y tail at 0x1000 + 8y, CQ y head at 0x1004 + 8y */

#define NVME_VERSION 0x00010400 /* 1.4.0 */

#define NVME_CC_EN 0x1u
#define NVME_CC_CSS(cc) (((cc) >> 4) & 7)
#define NVME_CC_MPS(cc) (((cc) >> 7) & 0xF)
#define NVME_CC_AMS(cc) (((cc) >> 11) & 7)
#define NVME_CC_SHN(cc) (((cc) >> 14) & 3)
#define NVME_CC_IOSQES(cc) (((cc) >> 16) & 0xF)
#define NVME_CC_IOCQES(cc) (((cc) >> 20) & 0xF)
#define NVME_CSTS_RDY 0x1u
#define NVME_CSTS_CFS 0x2u
#define NVME_CSTS_SHST_MASK 0xCu
#define NVME_CSTS_SHST_BUSY 0x4u
#define NVME_CSTS_SHST_DONE 0x8u

#define NVME_SQE_SIZE 64
#define NVME_CQE_SIZE 16
#define NVME_PAGE 4096u /* CAP.MPSMIN = MPSMAX = 0 */

/* Admin commands (5). */
#define NVME_ADM_DELETE_SQ 0x00
#define NVME_ADM_CREATE_SQ 0x01
#define NVME_ADM_GET_LOG_PAGE 0x02
#define NVME_ADM_DELETE_CQ 0x04
#define NVME_ADM_CREATE_CQ 0x05
#define NVME_ADM_IDENTIFY 0x06
#define NVME_ADM_ABORT 0x08
#define NVME_ADM_SET_FEATURES 0x09
#define NVME_ADM_GET_FEATURES 0x0A
#define NVME_ADM_ASYNC_EVENT 0x0C
#define NVME_ADM_DBBUF_CONFIG 0x7C

/* NVM commands (6). */
#define NVME_CMD_FLUSH 0x00
#define NVME_CMD_WRITE 0x01
#define NVME_CMD_READ 0x02
#define NVME_CMD_COMPARE 0x05
#define NVME_CMD_WRITE_ZEROES 0x08
#define NVME_CMD_DSM 0x09

/* Status: (type << 8) | code; the completion carries it shifted left by one, with DNR. */
#define NVME_SCT_GENERIC 0x000
#define NVME_SCT_CMD 0x100
#define NVME_SCT_MEDIA 0x200
#define NVME_SC_SUCCESS 0x00
#define NVME_SC_INVALID_OPCODE 0x01
#define NVME_SC_INVALID_FIELD 0x02
#define NVME_SC_DATA_XFER_ERROR 0x04
#define NVME_SC_INTERNAL 0x06
#define NVME_SC_ABORT_SQ_DELETED 0x08
#define NVME_SC_INVALID_NS 0x0B
#define NVME_SC_CMD_SEQ_ERROR 0x0C
#define NVME_SC_SGL_INVALID_LAST 0x0D
#define NVME_SC_SGL_INVALID_COUNT 0x0E
#define NVME_SC_SGL_INVALID_DATA_LEN 0x0F
#define NVME_SC_SGL_INVALID_TYPE 0x11
#define NVME_SC_PRP_INVALID_OFFSET 0x13
#define NVME_SC_SGL_INVALID_OFFSET 0x16
#define NVME_SC_NS_WRITE_PROTECTED 0x20
#define NVME_SC_LBA_RANGE 0x80
#define NVME_SC_CAP_EXCEEDED 0x81
#define NVME_SC_CQ_INVALID (NVME_SCT_CMD | 0x00)
#define NVME_SC_QID_INVALID (NVME_SCT_CMD | 0x01)
#define NVME_SC_QUEUE_SIZE (NVME_SCT_CMD | 0x02)
#define NVME_SC_AER_LIMIT (NVME_SCT_CMD | 0x05)
#define NVME_SC_INVALID_VECTOR (NVME_SCT_CMD | 0x08)
#define NVME_SC_INVALID_LOG_PAGE (NVME_SCT_CMD | 0x09)
#define NVME_SC_INVALID_QUEUE_DELETION (NVME_SCT_CMD | 0x0C)
#define NVME_SC_FEATURE_NOT_SAVEABLE (NVME_SCT_CMD | 0x0D)
#define NVME_SC_WRITE_FAULT (NVME_SCT_MEDIA | 0x80)
#define NVME_SC_READ_ERROR (NVME_SCT_MEDIA | 0x81)
#define NVME_SC_COMPARE_FAILED (NVME_SCT_MEDIA | 0x85)
#define NVME_STATUS_DNR 0x4000 /* in the 15-bit status field */

/* Identify CNS values (5.15). */
#define NVME_CNS_NS 0x00
#define NVME_CNS_CTRL 0x01
#define NVME_CNS_NS_ACTIVE_LIST 0x02
#define NVME_CNS_NS_DESC_LIST 0x03
#define NVME_CNS_CS_CTRL 0x06 /* NVMe 2.0; CSI in CDW11 31:24 */

/* Log pages (5.14.1). */
#define NVME_LOG_ERROR 0x01
#define NVME_LOG_SMART 0x02
#define NVME_LOG_FW_SLOT 0x03
#define NVME_ERROR_ENTRY_SIZE 64

/* Features (5.21.1). */
#define NVME_FEAT_ARBITRATION 0x01
#define NVME_FEAT_POWER_MGMT 0x02
#define NVME_FEAT_TEMP_THRESH 0x04
#define NVME_FEAT_ERR_RECOVERY 0x05
#define NVME_FEAT_VOLATILE_WC 0x06
#define NVME_FEAT_NUM_QUEUES 0x07
#define NVME_FEAT_IRQ_COALESCE 0x08
#define NVME_FEAT_IRQ_CONFIG 0x09
#define NVME_FEAT_WRITE_ATOMIC 0x0A
#define NVME_FEAT_ASYNC_EVENT 0x0B

/* Asynchronous events (5.2): type, information, log page, in completion dword 0. */
#define NVME_AER_TYPE_ERROR 0
#define NVME_AER_TYPE_SMART 1
#define NVME_AER_INFO_INVALID_DB_REG 0x00
#define NVME_AER_INFO_INVALID_DB_VALUE 0x01

/* SGL descriptor types (4.4), in the high nibble of byte 15. */
#define NVME_SGL_DATA_BLOCK 0x0
#define NVME_SGL_SEGMENT 0x2
#define NVME_SGL_LAST_SEGMENT 0x3
#define NVME_SGL_DESC_SIZE 16

#endif
